"""The assessment metrics on a crafted set of events whose answers are worked out by hand."""

from __future__ import annotations

import pytest

from cloud_broker.events.lifecycle import Event, Source, Status
from cloud_broker.events.metrics import compute_by_department, compute_stats, is_overdue_at

T0 = 1_764_000_000_000  # the period starts here
MIN = 60_000
P1 = T0 + 1440 * MIN  # and ends (exclusive) one day later


def _event(event_id: int, department: str | None, source: Source, reported_min: float,
           limit_min: float, *stages: float | None) -> Event:
    """`stages`: minutes after the report at which it was accepted, dispatched, handled,
    closed (None or absent: not yet)."""
    reported = T0 + round(reported_min * MIN)
    stamps = [None if s is None else reported + round(s * MIN) for s in stages]
    stamps += [None] * (4 - len(stamps))
    status = [Status.reported, Status.accepted, Status.dispatched, Status.handled,
              Status.closed][sum(s is not None for s in stamps)]
    return Event(id=event_id, key=f"k{event_id}", source=source, status=status,
                 title_zh=f"事件{event_id}", description_zh="", category="c", grade="二级",
                 department=department, handling_time_limit_minutes=limit_min,
                 closing_standard="", reported_by="x", reported_ts=reported,
                 received_ts=reported, deadline_ts=reported + round(limit_min * MIN),
                 accepted_ts=stamps[0], dispatched_ts=stamps[1], handled_ts=stamps[2],
                 closed_ts=stamps[3])


A, M = Source.alarm, Source.manual
EVENTS = [
    # drainage
    _event(1, "drainage", A, 0, 30, 5, 10, 20, 40),  # handled in 20 min, closed
    _event(2, "drainage", A, 60, 30, 5, 10, 50),  # handled in 50 min: late
    _event(3, "drainage", M, 120, 60, 1),  # accepted only; deadline passed: overdue
    _event(4, "drainage", A, 180, 2000),  # reported only; deadline after the period
    _event(5, "drainage", A, 200, 30, 1, 2, 1250),  # handled after the period ends: late
    _event(6, "drainage", A, -1, 30, 1, 2, 3, 4),  # reported before the period
    _event(7, "drainage", A, 1440, 30),  # reported at the period's (exclusive) end
    # lighting
    _event(8, "lighting", M, 10, 60, 5, 10, 30, 35),  # handled in 30 min, closed
    _event(9, "lighting", A, 20, 30, 5),  # accepted only; deadline passed: overdue
    # no department (a manual report not yet assigned)
    _event(10, None, M, 30, 5000),
]

EXPECTED = {  # department -> (events, from_alarms, accepted, dispatched, handled, closed,
    #              overdue, discovery, dispatch, handling, closure, on time, average minutes)
    "drainage": (5, 4, 4, 3, 2, 1, 3, 4 / 5, 3 / 4, 2 / 3, 1 / 5, 1 / 2, (20 + 50) / 2),
    "lighting": (2, 1, 2, 1, 1, 1, 1, 1 / 2, 1 / 2, 1 / 1, 1 / 2, 1 / 1, 30.0),
    None: (8, 5, 6, 4, 3, 2, 4, 5 / 8, 4 / 6, 3 / 4, 2 / 8, 2 / 3, (20 + 50 + 30) / 3),
}


def _as_tuple(department: str | None) -> tuple[object, ...]:
    s = compute_stats(EVENTS, department, T0, P1)
    return (s.events, s.from_alarms, s.accepted, s.dispatched, s.handled, s.closed, s.overdue,
            s.discovery_rate, s.dispatch_rate, s.handling_rate, s.closure_rate,
            s.ontime_rate, s.average_handling_minutes)


@pytest.mark.parametrize("department", list(EXPECTED), ids=lambda d: d or "all")
def test_every_metric_matches_the_hand_worked_answer(department: str | None) -> None:
    assert _as_tuple(department) == pytest.approx(EXPECTED[department])


def test_by_department_gives_each_department_then_the_total() -> None:
    rows = compute_by_department(EVENTS, T0, P1)
    assert [r.department for r in rows] == ["drainage", "lighting", None]
    assert rows[0] == compute_stats(EVENTS, "drainage", T0, P1)
    assert rows[-1] == compute_stats(EVENTS, None, T0, P1)


def test_stages_are_judged_as_of_the_period_end() -> None:
    later = compute_stats(EVENTS, "drainage", T0, P1 + 20 * MIN)
    assert later.events == 6  # event 7 (reported at P1) joins
    assert later.handled == 3  # event 5 was handled at T0 + 1450 min
    assert later.handling_rate == pytest.approx(3 / 3)
    assert later.average_handling_minutes == pytest.approx((20 + 50 + 1250) / 3)


def test_no_events_means_no_rates_rather_than_zero() -> None:
    s = compute_stats(EVENTS, "fire_rescue", T0, P1)
    assert (s.events, s.overdue) == (0, 0)
    assert (s.discovery_rate, s.dispatch_rate, s.handling_rate, s.closure_rate,
            s.average_handling_minutes) == (None, None, None, None, None)


def test_open_period_start_counts_everything_before_the_end() -> None:
    assert compute_stats(EVENTS, "drainage", None, P1).events == 6  # event 6 joins


@pytest.mark.parametrize(("handled_min", "to_min", "overdue"), [
    (None, 29, False),  # the deadline (30) has not passed yet
    (None, 30, False),  # `to` is exclusive: at 30 the deadline is not before it
    (None, 31, True),
    (30, 100, False),  # handled exactly at the deadline is in time
    (31, 100, True),
    (31, 31, True),  # handled late, judged before the handling: overdue either way
], ids=["before", "at-deadline", "after", "handled-at-deadline", "handled-late",
        "handled-after-to"])
def test_overdue_edges(handled_min: float | None, to_min: float, overdue: bool) -> None:
    event = _event(1, "drainage", A, 0, 30, 1, 2, handled_min)
    assert is_overdue_at(event, T0 + round(to_min * MIN)) is overdue
