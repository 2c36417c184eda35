"""What interlocks need to know about a device's recent readings, kept in memory at the edge.

Per point: the last value and its reading time, and since when the edge has watched it. For
bool points also when they turned true (starts) and false (stops) within the last hour
(`window_ms`, at most `max_events` each), plus the last start and stop whenever they were. A
transition is stamped with the time of the first reading that shows it (the change happened
between that reading and the one before): the later bound, so a stop looks more recent and a
start too, which errs towards refusing. The first reading of a point is not a transition (the
edge does not know when that state began).

A start this edge commanded is recorded with `record_start` when the write succeeds, before a
poll sees the point turn true; the point turning true within `match_window_ms` afterwards is the
same start and is not counted twice. Readings older than the point's last one (a late or
replayed batch) are ignored. Fed from the same readings the agent buffers; no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

HOUR_MS = 3_600_000
Value = bool | int | float


@dataclass
class _Start:
    ts: int
    commanded: bool
    observed: bool


@dataclass
class PointHistory:
    """One point: the last reading, since when it is watched, and bool transitions."""

    value: Value
    ts: int
    watched_since: int
    last_start: int | None = None
    last_stop: int | None = None
    starts: deque[_Start] = field(default_factory=deque)
    stops: deque[int] = field(default_factory=deque)


class DeviceHistory:
    """Fresh readings and recent starts/stops of one device (`observe`, `record_start`)."""

    def __init__(self, device: str, window_ms: int = HOUR_MS, max_events: int = 4096,
                 match_window_ms: int = 60_000) -> None:
        self.device = device
        self.window_ms = window_ms
        self.max_events = max_events
        self.match_window_ms = match_window_ms
        self._points: dict[str, PointHistory] = {}

    def observe(self, ts_ms: int, values: Mapping[str, Value]) -> None:
        """One reading of the device (ts: epoch ms when it was read)."""
        for name, value in values.items():
            point = self._points.get(name)
            if point is None:
                self._points[name] = PointHistory(value, ts_ms, ts_ms)
                continue
            if ts_ms <= point.ts:
                continue  # older than what we know (or the same reading again)
            if point.ts < 0:  # only a commanded start was known so far
                point.watched_since = ts_ms
            if isinstance(value, bool) and isinstance(point.value, bool) and value != point.value:
                if value:
                    self._observed_start(point, ts_ms)
                else:
                    point.last_stop = ts_ms
                    point.stops.append(ts_ms)
            point.value, point.ts = value, ts_ms
            self._prune(point, ts_ms)

    def record_start(self, point: str, ts_ms: int) -> None:
        """A start of `point` this edge commanded at `ts_ms` (counted before a poll sees it)."""
        history = self._points.get(point)
        if history is None:
            # Not read yet: keep the start anyway; the first reading fills in the value.
            history = PointHistory(False, -1, -1)
            self._points[point] = history
        history.starts.append(_Start(ts_ms, commanded=True, observed=False))
        history.last_start = max(history.last_start or ts_ms, ts_ms)
        self._prune(history, ts_ms)

    def _observed_start(self, point: PointHistory, ts_ms: int) -> None:
        for start in reversed(point.starts):
            if (start.commanded and not start.observed
                    and start.ts <= ts_ms <= start.ts + self.match_window_ms):
                start.observed = True  # the commanded start showing up in the readings
                break
        else:
            point.starts.append(_Start(ts_ms, commanded=False, observed=True))
        point.last_start = max(point.last_start or ts_ms, ts_ms)

    def _prune(self, point: PointHistory, now_ms: int) -> None:
        cutoff = now_ms - self.window_ms
        while point.starts and (point.starts[0].ts <= cutoff
                                or len(point.starts) > self.max_events):
            point.starts.popleft()
        while point.stops and (point.stops[0] <= cutoff or len(point.stops) > self.max_events):
            point.stops.popleft()

    # -- queries ----------------------------------------------------------------------------

    def reading(self, point: str) -> tuple[Value, int] | None:
        """(last value, its reading time) or None when the point was never read."""
        history = self._points.get(point)
        if history is None or history.ts < 0:
            return None
        return history.value, history.ts

    def watched_since(self, point: str) -> int | None:
        """When the edge first read the point; None if never."""
        history = self._points.get(point)
        return None if history is None or history.ts < 0 else history.watched_since

    def last_start(self, point: str) -> int | None:
        history = self._points.get(point)
        return None if history is None else history.last_start

    def last_stop(self, point: str) -> int | None:
        history = self._points.get(point)
        return None if history is None else history.last_stop

    def starts(self, point: str, since_ms: int) -> list[int]:
        """Times of the starts after `since_ms` (observed or commanded, each counted once)."""
        history = self._points.get(point)
        return [] if history is None else [s.ts for s in history.starts if s.ts > since_ms]

    def stops(self, point: str, since_ms: int) -> list[int]:
        """Times of the stops after `since_ms`."""
        history = self._points.get(point)
        return [] if history is None else [t for t in history.stops if t > since_ms]
