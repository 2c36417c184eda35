"""The event centre's figures in InfluxDB, for the dashboards: measurement `event_centre`
(docs/architecture.md, "InfluxDB schema").

Every `interval_s` one point per department and period, tags `department` (a catalogue id, or
`all` for every event) and `period`:

    day     events reported today so far      (local time, UTC+8)
    month   events reported this month so far

over the same population as the assessment metrics (metrics.py: the event's department, its
`reported_ts` in the period). Fields: how many of those events are *now* in each status
(`reported` ... `closed`), `open` (not closed), `overdue`, `events`, the five rates in percent
and `average_handling_minutes` (left out while their denominator is empty). Every catalogue
department gets its point, zeros too, so a department without events today shows 0, not
yesterday's figures. A failed write is logged and the next tick writes the figures then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Protocol

from cloud_broker.events.catalogue import Catalogue
from cloud_broker.events.lifecycle import Event, Status
from cloud_broker.events.metrics import compute_stats
from cloud_broker.events.store import EventStore
from cloud_broker.ingest.lineprotocol import FieldValue, format_line
from cloud_broker.ingest.writer import WriteError

log = logging.getLogger(__name__)

MEASUREMENT = "event_centre"
CHINA_TIME = timezone(timedelta(hours=8))
ALL = "all"
PERIODS = ("day", "month")
RATES = ("discovery_rate", "dispatch_rate", "handling_rate", "closure_rate", "ontime_rate")


class LineWriter(Protocol):
    """What cloud_broker.ingest.writer.InfluxWriter offers."""

    def write(self, lines: list[str]) -> None: ...

    def create_database(self) -> None: ...

    def close(self) -> None: ...


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def period_start(period: str, now_ts: int) -> int:
    """Epoch ms of the start of today (`day`) or of this month (`month`), UTC+8."""
    local = datetime.fromtimestamp(now_ts / 1000, CHINA_TIME)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        start = start.replace(day=1)
    elif period != "day":
        raise ValueError(f"unknown period {period!r}")
    return int(start.timestamp() * 1000)


def figures(events: Iterable[Event], department: str | None, from_ts: int,
            to_ts: int) -> dict[str, FieldValue]:
    """The fields of one `event_centre` point: events of `department` (None: all) reported in
    [from_ts, to_ts)."""
    events = list(events)
    stats = compute_stats(events, department, from_ts, to_ts)
    population = [e for e in events if (department is None or e.department == department)
                  and from_ts <= e.reported_ts < to_ts]
    fields: dict[str, FieldValue] = {
        str(status): sum(e.status is status for e in population) for status in Status}
    fields["open"] = sum(e.status is not Status.closed for e in population)
    fields["overdue"] = stats.overdue
    fields["events"] = stats.events
    for name in RATES:
        rate = getattr(stats, name)
        if rate is not None:
            fields[name] = float(rate * 100)
    if stats.average_handling_minutes is not None:
        fields["average_handling_minutes"] = float(stats.average_handling_minutes)
    return fields


def event_centre_lines(events: Iterable[Event], departments: Iterable[str],
                       now_ts: int) -> list[str]:
    """Line protocol of every (department + `all`, period) point at `now_ts`."""
    events = list(events)
    lines: list[str] = []
    for period in PERIODS:
        from_ts, to_ts = period_start(period, now_ts), now_ts + 1
        present = {e.department for e in events if e.department is not None
                   and from_ts <= e.reported_ts < to_ts}
        for department in [*sorted(set(departments) | present), None]:
            tags = {"department": department or ALL, "period": period}
            lines.append(format_line(MEASUREMENT, tags, figures(events, department, from_ts,
                                                                 to_ts), now_ts))
    return lines


class InfluxStats:
    """Writes the figures; `tick()` once, or `start()` a thread that ticks every interval."""

    def __init__(self, store: EventStore, catalogue: Catalogue, writer: LineWriter,
                 interval_s: float = 60.0, create_database: bool = True,
                 clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.catalogue = catalogue
        self.writer = writer
        self.interval_s = interval_s
        self.clock = clock
        self.ticks = 0
        self._database_ready = not create_database
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now_ts: int | None = None) -> int:
        """Write the figures as of `now_ts` (default: now); return the points written.
        Raises what the writer raises (the thread logs it and tries again next tick)."""
        now_ts = now_ts if now_ts is not None else self.clock()
        if not self._database_ready:
            self.writer.create_database()
            self._database_ready = True
        month = period_start("month", now_ts)
        events = self.store.reported_before(now_ts + 1, month)
        lines = event_centre_lines(events, [d.id for d in self.catalogue.departments], now_ts)
        self.writer.write(lines)
        self.ticks += 1
        return len(lines)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="event-centre-influx",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                if self._failing:
                    log.info("event centre figures are written to InfluxDB again")
                self._failing = False
            except Exception as err:  # never stop the centre; the next tick retries
                if not self._failing:  # a bug (not an InfluxDB answer) gets its traceback
                    log.warning("cannot write the event centre figures to InfluxDB (%s); "
                                "retrying every %g s", err, self.interval_s,
                                exc_info=not isinstance(err, WriteError))
                self._failing = True
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.writer.close()
