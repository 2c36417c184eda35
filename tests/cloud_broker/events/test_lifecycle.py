"""The lifecycle state machine: every allowed step, every refused one with its message."""

from __future__ import annotations

import pytest

from cloud_broker.events.lifecycle import (
    Action,
    Event,
    Source,
    Status,
    Transition,
    TransitionError,
    TransitionInputError,
    apply,
    transition,
)

T0 = 1_764_000_000_000
ALLOWED = [
    (Status.reported, Action.accept, Status.accepted),
    (Status.accepted, Action.dispatch, Status.dispatched),
    (Status.dispatched, Action.handle, Status.handled),
    (Status.handled, Action.close, Status.closed),
]
REFUSED = [  # (status, action, a piece of the Chinese message, a piece of the English one)
    (Status.reported, Action.dispatch, "须先受理才能分拨", "must be accepted first"),
    (Status.reported, Action.handle, "须先分拨才能处置", "must be dispatched first"),
    (Status.reported, Action.close, "须先处置才能结案", "must be handled first"),
    (Status.accepted, Action.accept, "事件已受理，不能再受理", "already accepted"),
    (Status.accepted, Action.handle, "须先分拨才能处置", "must be dispatched first"),
    (Status.accepted, Action.close, "须先处置才能结案", "must be handled first"),
    (Status.dispatched, Action.accept, "不能再受理", "already dispatched"),
    (Status.dispatched, Action.dispatch, "不能再分拨", "already dispatched"),
    (Status.dispatched, Action.close, "须先处置才能结案", "must be handled first"),
    (Status.handled, Action.handle, "不能再处置", "already handled"),
    (Status.handled, Action.accept, "不能再受理", "already handled"),
    (Status.closed, Action.close, "事件已结案，不能再结案", "already closed"),
    (Status.closed, Action.accept, "事件已结案，不能再受理", "already closed"),
    (Status.closed, Action.handle, "事件已结案，不能再处置", "already closed"),
]


def _department(action: Action) -> str | None:
    return "drainage" if action is Action.dispatch else None


@pytest.mark.parametrize(("status", "action", "target"), ALLOWED,
                         ids=[f"{s}-{a}" for s, a, _ in ALLOWED])
def test_allowed_step_records_who_when_and_note(status: Status, action: Action,
                                                target: Status) -> None:
    step = transition(status, action, " 王五 ", T0, _department(action), note="现场已处理")
    assert step == Transition(status, target, "王五", T0, "现场已处理", _department(action))


@pytest.mark.parametrize(("status", "action", "zh", "en"), REFUSED,
                         ids=[f"{s}-{a}" for s, a, _, _ in REFUSED])
def test_refused_step_names_the_reason_in_both_languages(status: Status, action: Action,
                                                         zh: str, en: str) -> None:
    with pytest.raises(TransitionError) as caught:
        transition(status, action, "王五", T0, _department(action))
    assert not isinstance(caught.value, TransitionInputError)
    assert zh in caught.value.message_zh
    assert en in caught.value.message_en
    assert str(caught.value) == f"{caught.value.message_zh} / {caught.value.message_en}"


def test_every_pair_not_allowed_is_refused() -> None:
    allowed = {(s, a) for s, a, _ in ALLOWED}
    for status in Status:
        for action in Action:
            if (status, action) in allowed:
                continue
            with pytest.raises(TransitionError):
                transition(status, action, "王五", T0, _department(action))


@pytest.mark.parametrize(("action", "by", "department", "message"), [
    (Action.dispatch, "王五", None, "dispatch needs a department"),
    (Action.dispatch, "王五", "", "dispatch needs a department"),
    (Action.accept, "  ", None, "needs the actor"),
    (Action.accept, "王五", "drainage", "only dispatch sets the department"),
    (Action.dispatch, "王五", "排水/中心", "must match"),
], ids=["no-department", "empty-department", "no-actor", "department-on-accept",
        "department-not-an-id"])
def test_malformed_request_is_an_input_error(action: Action, by: str, department: str | None,
                                             message: str) -> None:
    status = Status.accepted if action is Action.dispatch else Status.reported
    with pytest.raises(TransitionInputError, match=message):
        transition(status, action, by, T0, department)


def _event(status: Status = Status.reported) -> Event:
    return Event(id=1, key="a1", source=Source.alarm, status=status, title_zh="泵站水位超高",
                 description_zh="", category="排水防涝/泵站运行", grade="一级",
                 department="drainage", handling_time_limit_minutes=30, closing_standard="…",
                 reported_by="iot/ps-01", reported_ts=T0, received_ts=T0,
                 deadline_ts=T0 + 30 * 60_000)


def test_apply_walks_the_whole_lifecycle_and_stamps_each_stage() -> None:
    event = _event()
    for i, (_status, action, _target) in enumerate(ALLOWED, start=1):
        department = "fire_rescue" if action is Action.dispatch else None
        event = apply(event, transition(event.status, action, "王五", T0 + i, department))
    assert event.status is Status.closed
    assert (event.accepted_ts, event.dispatched_ts, event.handled_ts, event.closed_ts) == (
        T0 + 1, T0 + 2, T0 + 3, T0 + 4)
    assert event.department == "fire_rescue"


def test_apply_refuses_a_step_made_from_another_status() -> None:
    stale = transition(Status.reported, Action.accept, "王五", T0)
    with pytest.raises(TransitionError, match="the event is accepted"):
        apply(_event(Status.accepted), stale)
