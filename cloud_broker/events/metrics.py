"""Assessment metrics (统一考核) of the event centre: pure computation on a list of events.

For a department D (or all departments) and a period [from, to) — times in epoch ms — the
population P is the events with `department == D` (the responsible department; a dispatch
sets it to the department dispatched to) whose `reported_ts` lies in [from, to). Every stage is
judged *as of `to`*: an event counts as accepted, dispatched, handled or closed only if that
transition happened before `to`, so a past period's figures do not change later.

    discovery rate   = |P with source = alarm| / |P|
                       share discovered automatically by IoT alarms (智能发现) vs all,
                       the others being manual reports
    dispatch rate    = |P dispatched| / |P accepted|
    handling rate    = |P handled| / |P dispatched|
    closure rate     = |P closed| / |P|
    on-time rate     = |P handled by its deadline| / |P handled|   (按期处置率)
    average handling time = mean of (handled_ts - reported_ts) in minutes over P handled
    overdue count    = |P with deadline_ts < to and not handled by its deadline|
                       (deadline_ts = reported_ts + the catalogue's handling time limit;
                       handled after the deadline, or not handled at all, counts)

A rate or average with an empty denominator is None (no events: nothing to assess), not 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cloud_broker.events.lifecycle import Event, Source

MS_PER_MINUTE = 60_000


@dataclass(frozen=True)
class DepartmentStats:
    """The counts behind the metrics, and the metrics; department None means all of them."""

    department: str | None
    from_ts: int | None
    to_ts: int
    events: int
    from_alarms: int
    accepted: int
    dispatched: int
    handled: int
    closed: int
    overdue: int
    discovery_rate: float | None
    dispatch_rate: float | None
    handling_rate: float | None
    closure_rate: float | None
    ontime_rate: float | None
    average_handling_minutes: float | None


def _reached(ts: int | None, to_ts: int) -> bool:
    return ts is not None and ts < to_ts


def is_overdue_at(event: Event, to_ts: int) -> bool:
    """The deadline passed before `to_ts` without the event being handled by the deadline."""
    late = event.handled_ts is None or event.handled_ts > event.deadline_ts
    return event.deadline_ts < to_ts and late


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def compute_stats(events: Iterable[Event], department: str | None, from_ts: int | None,
                  to_ts: int) -> DepartmentStats:
    """The metrics of `department` (None: all) for events reported in [from_ts, to_ts)."""
    population = [e for e in events
                  if (department is None or e.department == department)
                  and (from_ts is None or e.reported_ts >= from_ts) and e.reported_ts < to_ts]
    accepted = sum(_reached(e.accepted_ts, to_ts) for e in population)
    dispatched = sum(_reached(e.dispatched_ts, to_ts) for e in population)
    handled = [e for e in population if _reached(e.handled_ts, to_ts)]
    closed = sum(_reached(e.closed_ts, to_ts) for e in population)
    from_alarms = sum(e.source is Source.alarm for e in population)
    minutes = [(e.handled_ts - e.reported_ts) / MS_PER_MINUTE for e in handled
               if e.handled_ts is not None]
    return DepartmentStats(
        department=department, from_ts=from_ts, to_ts=to_ts, events=len(population),
        from_alarms=from_alarms, accepted=accepted, dispatched=dispatched,
        handled=len(handled), closed=closed,
        overdue=sum(is_overdue_at(e, to_ts) for e in population),
        discovery_rate=_ratio(from_alarms, len(population)),
        dispatch_rate=_ratio(dispatched, accepted),
        handling_rate=_ratio(len(handled), dispatched),
        closure_rate=_ratio(closed, len(population)),
        ontime_rate=_ratio(sum(e.handled_ts is not None and e.handled_ts <= e.deadline_ts
                               for e in handled), len(handled)),
        average_handling_minutes=sum(minutes) / len(minutes) if minutes else None)


def compute_by_department(events: Iterable[Event], from_ts: int | None,
                          to_ts: int) -> list[DepartmentStats]:
    """One row per department that has events in the period (sorted), then the total (None)."""
    events = list(events)
    departments = sorted({e.department for e in events if e.department is not None
                          and (from_ts is None or e.reported_ts >= from_ts)
                          and e.reported_ts < to_ts})
    rows = [compute_stats(events, d, from_ts, to_ts) for d in departments]
    return [*rows, compute_stats(events, None, from_ts, to_ts)]
