"""The event lifecycle of the city event-management centre, as a pure state machine.

    上报 reported ──accept──▶ 受理 accepted ──dispatch──▶ 分拨 dispatched
                                                  (to a department)
        ──handle──▶ 处置 handled ──close──▶ 结案 closed

Each transition goes one step forward, names who made it (`by`) and when (`at_ts`, epoch ms)
and may carry a note; `dispatch` also names the department. Anything else (skipping a step,
going back, repeating one, acting on a closed event) raises `TransitionError` with a Chinese and
an English message; a request that is malformed whatever the state (no actor, dispatch without
a department) raises its subclass `TransitionInputError`.

`Event` is the record the store keeps and metrics.py and overdue.py read; `apply` returns it
after a transition. No I/O here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum

DEPARTMENT_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class Status(StrEnum):
    reported = "reported"
    accepted = "accepted"
    dispatched = "dispatched"
    handled = "handled"
    closed = "closed"


class Action(StrEnum):
    accept = "accept"
    dispatch = "dispatch"
    handle = "handle"
    close = "close"


class Source(StrEnum):
    alarm = "alarm"  # discovered by an IoT alarm (智能发现)
    manual = "manual"  # reported by a person (巡查上报, 12345 hotline, ...)


ORDER = tuple(Status)
TARGET = {Action.accept: Status.accepted, Action.dispatch: Status.dispatched,
          Action.handle: Status.handled, Action.close: Status.closed}
STATUS_ZH = {Status.reported: "已上报", Status.accepted: "已受理", Status.dispatched: "已分拨",
             Status.handled: "已处置", Status.closed: "已结案"}
ACTION_ZH = {Action.accept: "受理", Action.dispatch: "分拨", Action.handle: "处置",
             Action.close: "结案"}
STAGE_FIELD = {Status.accepted: "accepted_ts", Status.dispatched: "dispatched_ts",
               Status.handled: "handled_ts", Status.closed: "closed_ts"}


class TransitionError(Exception):
    """The transition is not allowed from the event's current status (HTTP 409)."""

    def __init__(self, message_zh: str, message_en: str) -> None:
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(f"{message_zh} / {message_en}")


class TransitionInputError(TransitionError):
    """The request is malformed whatever the status: no actor, no department (HTTP 422)."""


@dataclass(frozen=True)
class Transition:
    """One recorded step; `from_status` is None for the report that created the event."""

    from_status: Status | None
    to_status: Status
    by: str
    at_ts: int
    note: str = ""
    department: str | None = None


@dataclass(frozen=True)
class Event:
    """An event as stored. Times are epoch ms; `deadline_ts` = reported_ts + time limit."""

    id: int
    key: str  # idempotency key: the alarm occurrence id, or the manual report's key
    source: Source
    status: Status
    title_zh: str
    description_zh: str
    category: str
    grade: str
    department: str | None  # responsible department; dispatch sets the one it went to
    handling_time_limit_minutes: float
    closing_standard: str
    reported_by: str
    reported_ts: int
    received_ts: int
    deadline_ts: int
    accepted_ts: int | None = None
    dispatched_ts: int | None = None
    handled_ts: int | None = None
    closed_ts: int | None = None
    overdue: bool = False
    overdue_ts: int | None = None
    escalated_ts: int | None = None
    alarm_id: str | None = None
    alarm_cleared_ts: int | None = None
    domain: str | None = None
    rule: str | None = None
    device: str | None = None
    device_name: str | None = None
    site: str | None = None
    severity: str | None = None


def check_department(department: str) -> str:
    """Department ids appear in MQTT topics: snake_case, no `/`, `+` or `#`."""
    if not re.fullmatch(DEPARTMENT_PATTERN, department):
        raise TransitionInputError(f"部门编号 {department!r} 无效",
                                   f"department id {department!r} must match "
                                   f"{DEPARTMENT_PATTERN}")
    return department


def transition(status: Status, action: Action, by: str, at_ts: int,
               department: str | None = None, note: str = "") -> Transition:
    """The transition `action` makes from `status`; raise TransitionError if not allowed."""
    if not by.strip():
        raise TransitionInputError("必须注明操作人", f"{action} needs the actor ('by')")
    if action is Action.dispatch and not department:
        raise TransitionInputError("分拨必须指定责任部门", "dispatch needs a department")
    if action is not Action.dispatch and department:
        raise TransitionInputError(f"只有分拨可以指定部门，{ACTION_ZH[action]}不能",
                                   f"only dispatch sets the department, not {action}")
    if department:
        check_department(department)
    target = TARGET[action]
    if ORDER.index(target) != ORDER.index(status) + 1:
        raise _refusal(status, action)
    return Transition(status, target, by.strip(), at_ts, note, department)


def _refusal(status: Status, action: Action) -> TransitionError:
    target = TARGET[action]
    here = f"事件{STATUS_ZH[status]}"
    if ORDER.index(target) <= ORDER.index(status):
        return TransitionError(f"{here}，不能再{ACTION_ZH[action]}",
                               f"cannot {action} an event that is already {status}")
    needed = ORDER[ORDER.index(target) - 1]
    step = next(a for a, t in TARGET.items() if t is needed)
    return TransitionError(f"{here}，须先{ACTION_ZH[step]}才能{ACTION_ZH[action]}",
                           f"cannot {action} an event that is {status}: it must be "
                           f"{needed} first ({step} it)")


def apply(event: Event, step: Transition) -> Event:
    """The event after `step` (which `transition` produced from the event's status)."""
    if step.from_status is not event.status:
        raise TransitionError(f"事件状态已变为{STATUS_ZH[event.status]}",
                              f"the event is {event.status}, not {step.from_status}")
    changes: dict[str, object] = {"status": step.to_status,
                                  STAGE_FIELD[step.to_status]: step.at_ts}
    if step.department:
        changes["department"] = step.department
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]
