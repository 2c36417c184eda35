"""One evaluator per rule kind: readings in, a verdict out. Pure (numpy for windows).

A verdict says whether the rule's raise condition and its clear condition hold now; the
engine (engine.py) turns verdicts into alarm occurrences with pending durations, so a rule kind
only has to know its own arithmetic.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from device_profiles.rules import (
    AggregateAlarm,
    AlarmRule,
    Condition,
    ConditionAlarm,
    NightFlowAlarm,
    NoDataAlarm,
    RateAlarm,
    StateAlarm,
    ThresholdAlarm,
)

Value = bool | int | float
LOCAL = timezone(timedelta(hours=8))  # the district's local time (night-flow windows)


@dataclass(frozen=True)
class Verdict:
    raise_condition: bool
    clear_condition: bool
    value: float
    threshold: float


def _crossing(direction: str, value: float, raise_at: float, clear_at: float) -> Verdict:
    if direction == "above":
        return Verdict(value > raise_at, value < clear_at, value, raise_at)
    return Verdict(value < raise_at, value > clear_at, value, raise_at)


class Evaluator:
    """Base: `observe` a reading of the device, `silence` when it has been quiet."""

    def observe(self, ts: int, values: Mapping[str, Value]) -> Verdict | None:
        return None

    def silence(self, silent_ms: int, interval_ms: float) -> Verdict | None:
        return None


class ThresholdEvaluator(Evaluator):
    def __init__(self, rule: ThresholdAlarm) -> None:
        self.rule = rule

    def observe(self, ts: int, values: Mapping[str, Value]) -> Verdict | None:
        if self.rule.point not in values:
            return None
        r = self.rule
        return _crossing(r.direction, float(values[r.point]), r.raise_at, r.clear_at)


class StateEvaluator(Evaluator):
    def __init__(self, rule: StateAlarm) -> None:
        self.rule = rule

    def observe(self, ts: int, values: Mapping[str, Value]) -> Verdict | None:
        if self.rule.point not in values:
            return None
        on = bool(values[self.rule.point]) == self.rule.raise_when
        return Verdict(on, not on, float(bool(values[self.rule.point])),
                       float(self.rule.raise_when))


class _Window:
    """(ts, value) samples of one point over the last `window_s`."""

    def __init__(self, window_s: float) -> None:
        self.window_ms = window_s * 1000
        self.samples: collections.deque[tuple[int, float]] = collections.deque()

    def add(self, ts: int, value: float) -> None:
        self.samples.append((ts, value))
        while self.samples and self.samples[0][0] < ts - self.window_ms:
            self.samples.popleft()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        data = np.array(self.samples, dtype=float)
        return data[:, 0], data[:, 1]


class RateEvaluator(Evaluator):
    """Least-squares slope over the window, in units per minute; needs half a window of data."""

    def __init__(self, rule: RateAlarm) -> None:
        self.rule = rule
        self.window = _Window(rule.window_s)

    def observe(self, ts: int, values: Mapping[str, Value]) -> Verdict | None:
        if self.rule.point not in values:
            return None
        self.window.add(ts, float(values[self.rule.point]))
        times, vals = self.window.arrays()
        if len(times) < 3 or times[-1] - times[0] < self.window.window_ms / 2:
            return None
        slope_per_ms = np.polyfit(times - times[0], vals, 1)[0]
        rate = float(slope_per_ms * 60_000)
        magnitude = rate if self.rule.direction == "rising" else -rate
        return Verdict(magnitude > self.rule.raise_rate, magnitude < self.rule.clear_rate,
                       round(magnitude, 6), self.rule.raise_rate)


_AGGREGATES = {"mean": np.mean, "max": np.max, "min": np.min}


class AggregateEvaluator(Evaluator):
    def __init__(self, rule: AggregateAlarm) -> None:
        self.rule = rule
        self.window = _Window(rule.window_s)

    def observe(self, ts: int, values: Mapping[str, Value]) -> Verdict | None:
        if self.rule.point not in values:
            return None
        self.window.add(ts, float(values[self.rule.point]))
        _times, vals = self.window.arrays()
        value = float(_AGGREGATES[self.rule.function](vals))
        r = self.rule
        return _crossing(r.direction, round(value, 6), r.raise_at, r.clear_at)


_OPS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__,
        "==": float.__eq__, "!=": float.__ne__}


def _holds(condition: Condition, value: Value) -> bool:
    return bool(_OPS[condition.op](float(value), float(condition.value)))


class ConditionEvaluator(Evaluator):
    def __init__(self, rule: ConditionAlarm) -> None:
        self.rule = rule

    def observe(self, ts: int, values: Mapping[str, Value]) -> Verdict | None:
        if any(c.point not in values for c in self.rule.all):
            return None
        holds = all(_holds(c, values[c.point]) for c in self.rule.all)
        last = self.rule.all[-1]
        return Verdict(holds, not holds, float(values[last.point]), float(last.value))


class NightFlowEvaluator(Evaluator):
    """Flow over each night's window from the first and last cumulative reading inside it;
    judged once per night, on the first reading after the window ends."""

    def __init__(self, rule: NightFlowAlarm) -> None:
        self.rule = rule
        self.start = _hhmm(rule.window_start)
        self.end = _hhmm(rule.window_end)
        self.night: tuple[object, tuple[int, float] | None, tuple[int, float] | None] | None = None

    def observe(self, ts: int, values: Mapping[str, Value]) -> Verdict | None:
        if self.rule.point not in values:
            return None
        local = datetime.fromtimestamp(ts / 1000, UTC).astimezone(LOCAL)
        minute = local.hour * 60 + local.minute
        volume = float(values[self.rule.point])
        if self.start <= minute < self.end:
            first = self.night[1] if self.night and self.night[0] == local.date() else None
            self.night = (local.date(), first or (ts, volume), (ts, volume))
            return None
        if minute >= self.end and self.night and self.night[0] == local.date():
            _day, first, last = self.night
            self.night = None
            assert first is not None and last is not None
            hours = (last[0] - first[0]) / 3_600_000
            if hours < (self.end - self.start) / 120:  # under half the window: no judgement
                return None
            flow = round((last[1] - first[1]) / hours, 6)
            return Verdict(flow > self.rule.raise_at, flow <= self.rule.clear_at, flow,
                           self.rule.raise_at)
        return None


class NoDataEvaluator(Evaluator):
    def __init__(self, rule: NoDataAlarm) -> None:
        self.rule = rule

    def observe(self, ts: int, values: Mapping[str, Value]) -> Verdict | None:
        return Verdict(False, True, 0.0, self.rule.after_intervals)

    def silence(self, silent_ms: int, interval_ms: float) -> Verdict | None:
        intervals = silent_ms / interval_ms
        if intervals > self.rule.after_intervals:
            return Verdict(True, False, round(intervals, 1), self.rule.after_intervals)
        return None


def _hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def evaluator_for(rule: AlarmRule) -> Evaluator:
    factories: dict[type, type[Evaluator]] = {
        ThresholdAlarm: ThresholdEvaluator, StateAlarm: StateEvaluator, RateAlarm: RateEvaluator,
        AggregateAlarm: AggregateEvaluator, ConditionAlarm: ConditionEvaluator,
        NightFlowAlarm: NightFlowEvaluator, NoDataAlarm: NoDataEvaluator}
    return factories[type(rule)](rule)  # type: ignore[arg-type]
