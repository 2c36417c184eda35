"""HTTP API of the event centre (FastAPI): create events from alarms (idempotent on the alarm
occurrence id) or from people, move them through the lifecycle, record alarm clears, list,
and compute the assessment metrics. Every response has a pydantic model, so /openapi.json
documents the whole contract; /docs renders it. Times are epoch ms, as in dc.alarm/1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud_broker.events.catalogue import Catalogue, Grade
from cloud_broker.events.lifecycle import (
    Action,
    Event,
    Source,
    Status,
    Transition,
    TransitionError,
    TransitionInputError,
)
from cloud_broker.events.metrics import DepartmentStats, compute_by_department, compute_stats
from cloud_broker.events.overdue import now_ms
from cloud_broker.events.store import EventNotFound, EventStore

CHINA_TIME = timezone(timedelta(hours=8))
PREFIX = "/api/v1"


class RequestRefused(Exception):
    """A request the centre will not carry out; `reason` is a stable machine-readable word."""

    def __init__(self, status_code: int, reason: str, detail: str) -> None:
        self.status_code = status_code
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


class AlarmIn(BaseModel):
    """An alarm transition, schema dc.alarm/1 (cloud_broker/rules/engine.py `AlarmEvent`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    schema_: Literal["dc.alarm/1"] = Field("dc.alarm/1", alias="schema")
    alarm_id: str = Field(min_length=1, max_length=128, description="occurrence id: the "
                          "idempotency key")
    state: Literal["raised", "acknowledged", "cleared"]
    device: str
    device_name: str = ""
    gateway: str = ""
    site: str | None = None
    domain: str
    profile: str = ""
    rule: str
    kind: str = ""
    point: str = ""
    severity: str
    title_zh: str
    description_zh: str = ""
    value: float | None = None
    threshold: float | None = None
    unit: str = ""
    ts: int
    raised_ts: int
    cleared_ts: int | None = None
    acked_by: str | None = None
    acked_ts: int | None = None


class ManualIn(BaseModel):
    """An event reported by a person (patrol, hotline): not discovered by an alarm."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(None, min_length=1, max_length=128, description="idempotency key; "
                            "a new one is generated when absent")
    title_zh: str = Field(min_length=1)
    description_zh: str = ""
    category: str = Field(min_length=1)
    grade: Grade
    department: str | None = Field(None, description="responsible department id")
    handling_time_limit_minutes: float = Field(gt=0)
    closing_standard: str = ""
    reported_by: str = Field(min_length=1)
    site: str | None = None


class EventCreate(BaseModel):
    """Exactly one of `alarm` and `manual`."""

    model_config = ConfigDict(extra="forbid")

    alarm: AlarmIn | None = None
    manual: ManualIn | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EventCreate:
        if (self.alarm is None) == (self.manual is None):
            raise ValueError("give exactly one of 'alarm' and 'manual'")
        return self


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, description="who makes the transition")
    department: str | None = Field(None, description="dispatch only: the department id")
    note: str = ""


class ClearedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cleared_ts: int | None = Field(None, description="when the alarm cleared; default now")
    alarm: AlarmIn | None = Field(None, description="the cleared alarm: creates the event if "
                                  "its raise never arrived")


class ErrorOut(BaseModel):
    detail: str
    reason: str = Field(description="unmapped | invalid_transition | invalid_input | "
                        "unknown_department | not_found")


class TransitionOut(BaseModel):
    from_status: Status | None
    to_status: Status
    by: str
    at_ts: int
    note: str
    department: str | None


class EventOut(BaseModel):
    id: int
    key: str
    source: Source
    status: Status
    title_zh: str
    description_zh: str
    category: str
    grade: str
    department: str | None
    department_zh: str | None
    handling_time_limit_minutes: float
    closing_standard: str
    reported_by: str
    reported_ts: int
    received_ts: int
    deadline_ts: int
    accepted_ts: int | None
    dispatched_ts: int | None
    handled_ts: int | None
    closed_ts: int | None
    overdue: bool
    overdue_ts: int | None
    escalated_ts: int | None
    alarm_id: str | None
    alarm_cleared_ts: int | None
    domain: str | None
    rule: str | None
    device: str | None
    device_name: str | None
    site: str | None
    severity: str | None


class EventDetail(EventOut):
    transitions: list[TransitionOut]


class DepartmentStatsOut(BaseModel):
    department: str | None = Field(description="None: all departments")
    department_zh: str | None
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
    ontime_rate: float | None = Field(description="按期处置率: handled by the deadline / handled")
    average_handling_minutes: float | None


class StatsOut(BaseModel):
    from_ts: int | None
    to_ts: int
    departments: list[DepartmentStatsOut] = Field(description="one row per department, then "
                                                  "the total (department null)")


def epoch_ms(moment: datetime) -> int:
    """Naive times are China Standard Time (UTC+8)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_TIME)
    return int(moment.timestamp() * 1000)


def event_from_alarm(alarm: AlarmIn, catalogue: Catalogue, received_ts: int) -> Event:
    entry = catalogue.entry(alarm.domain, alarm.rule)
    if entry is None:
        raise RequestRefused(422, "unmapped", f"告警规则 {alarm.domain}/{alarm.rule} 未列入事项"
                             f"清单 / alarm rule {alarm.domain}/{alarm.rule} is not in the "
                             "event catalogue")
    limit = entry.handling_time_limit_minutes
    return Event(
        id=0, key=alarm.alarm_id, source=Source.alarm, status=Status.reported,
        title_zh=alarm.title_zh, description_zh=alarm.description_zh,
        category=entry.category, grade=str(entry.grade), department=entry.department,
        handling_time_limit_minutes=limit, closing_standard=entry.closing_standard,
        reported_by=f"iot/{alarm.device}", reported_ts=alarm.raised_ts,
        received_ts=received_ts, deadline_ts=alarm.raised_ts + round(limit * 60_000),
        alarm_id=alarm.alarm_id,
        alarm_cleared_ts=(alarm.cleared_ts or alarm.ts) if alarm.state == "cleared" else None,
        domain=alarm.domain, rule=alarm.rule, device=alarm.device,
        device_name=alarm.device_name or None, site=alarm.site, severity=alarm.severity)


def event_from_manual(manual: ManualIn, catalogue: Catalogue, now: int) -> Event:
    if manual.department is not None:
        _known_department(catalogue, manual.department)
    limit = manual.handling_time_limit_minutes
    return Event(
        id=0, key=manual.key or f"manual-{uuid.uuid4().hex}", source=Source.manual,
        status=Status.reported, title_zh=manual.title_zh, description_zh=manual.description_zh,
        category=manual.category, grade=str(manual.grade), department=manual.department,
        handling_time_limit_minutes=limit, closing_standard=manual.closing_standard,
        reported_by=manual.reported_by, reported_ts=now, received_ts=now,
        deadline_ts=now + round(limit * 60_000), site=manual.site)


def _known_department(catalogue: Catalogue, department: str) -> None:
    if not catalogue.has_department(department):
        known = ", ".join(d.id for d in catalogue.departments)
        raise RequestRefused(422, "unknown_department", f"未知部门 {department!r} / unknown "
                             f"department {department!r}; known: {known}")


def _event_out(event: Event, catalogue: Catalogue) -> EventOut:
    return EventOut(**vars(event), department_zh=catalogue.department_name(event.department))


def _transition_out(step: Transition) -> TransitionOut:
    return TransitionOut(**vars(step))


def _stats_out(row: DepartmentStats, catalogue: Catalogue) -> DepartmentStatsOut:
    return DepartmentStatsOut(**vars(row), department_zh=catalogue.department_name(
        row.department))


ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorOut, "description": "no such event"},
    409: {"model": ErrorOut, "description": "the transition is not allowed in this status"},
    422: {"model": ErrorOut, "description": "refused: unmapped alarm, unknown department, "
          "missing actor or department (or FastAPI's validation error list)"},
}
TRANSITION_DOCS = {Action.accept: "受理: accept a reported event.",
                   Action.dispatch: "分拨: dispatch an accepted event to `department`.",
                   Action.handle: "处置: record that a dispatched event was handled.",
                   Action.close: "结案: close a handled event."}


class _Routes:
    """The handlers, bound to one store, catalogue and clock."""

    def __init__(self, store: EventStore, catalogue: Catalogue, clock: Callable[[], int]) -> None:
        self.store = store
        self.catalogue = catalogue
        self.clock = clock

    def detail(self, event: Event) -> EventDetail:
        steps = [_transition_out(s) for s in self.store.transitions(event.id)]
        return EventDetail(**_event_out(event, self.catalogue).model_dump(), transitions=steps)

    def create_event(self, body: EventCreate, response: Response) -> EventDetail:
        """Report an event from an alarm (idempotency key = `alarm_id`; a repeat answers 200
        with the existing event) or by a person (`manual`)."""
        now = self.clock()
        if body.alarm is not None:
            event, created = self._create_from_alarm(body.alarm, now)
            if body.alarm.state == "cleared":
                cleared_ts = body.alarm.cleared_ts or body.alarm.ts
                event = self.store.record_alarm_cleared(event.key, cleared_ts)
        else:
            assert body.manual is not None
            event, created = self.store.create(event_from_manual(body.manual, self.catalogue,
                                                                 now))
        response.status_code = 201 if created else 200
        return self.detail(event)

    def _create_from_alarm(self, alarm: AlarmIn, now: int) -> tuple[Event, bool]:
        return self.store.create(event_from_alarm(alarm, self.catalogue, now),
                                 alarm.model_dump(by_alias=True))

    def alarm_cleared(self, alarm_id: str, body: ClearedIn, response: Response) -> EventDetail:
        """Record that the event's alarm cleared (idempotent: the first clear time stays).
        With `alarm`, an occurrence whose raise never arrived becomes its event here (201)."""
        cleared_ts = body.cleared_ts or self.clock()
        if body.alarm is not None and self.store.find(alarm_id) is None:
            if body.alarm.alarm_id != alarm_id:
                raise RequestRefused(422, "invalid_input", "alarm.alarm_id differs from the path")
            _, created = self._create_from_alarm(body.alarm, self.clock())
            response.status_code = 201 if created else 200
        return self.detail(self.store.record_alarm_cleared(alarm_id, cleared_ts))

    def transition_route(self, action: Action) -> Callable[[int, TransitionIn], EventDetail]:
        def route(event_id: int, body: TransitionIn) -> EventDetail:
            if body.department is not None:
                _known_department(self.catalogue, body.department)
            return self.detail(self.store.advance(event_id, action, body.by, self.clock(),
                                                  body.department, body.note))

        route.__name__ = f"{action}_event"
        route.__doc__ = TRANSITION_DOCS[action]
        return route

    def list_events(self, status: Status | None = None, department: str | None = None,
                    overdue: bool | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[EventOut]:
        """Events, newest first, filtered by status, department id and overdue mark."""
        events = self.store.events(status, department, overdue, limit)
        return [_event_out(e, self.catalogue) for e in events]

    def show_event(self, event_id: int) -> EventDetail:
        """One event with every transition (who, when, note)."""
        return self.detail(self.store.get(event_id))

    def stats(self, department: str | None = None,
              from_: Annotated[datetime | None, Query(alias="from", description="ISO 8601 "
                                                      "or epoch; naive times are UTC+8")] = None,
              to: Annotated[datetime | None, Query(description="exclusive; default now")] = None,
              ) -> StatsOut:
        """Assessment metrics of the events reported in [from, to), by department (each
        department, then the total), or of one department."""
        to_ts = epoch_ms(to) if to is not None else self.clock() + 1
        from_ts = epoch_ms(from_) if from_ is not None else None
        events = self.store.reported_before(to_ts, from_ts)
        rows = ([compute_stats(events, department, from_ts, to_ts)] if department
                else compute_by_department(events, from_ts, to_ts))
        return StatsOut(from_ts=from_ts, to_ts=to_ts,
                        departments=[_stats_out(r, self.catalogue) for r in rows])


def create_app(store: EventStore, catalogue: Catalogue,
               clock: Callable[[], int] = now_ms) -> FastAPI:
    """The event centre's API over an opened store and a checked catalogue."""
    app = FastAPI(title="Dongchang event centre", version="1.0.0",
                  description="城市事件管理中心: events from IoT alarms and people, through "
                  "上报 → 受理 → 分拨 → 处置 → 结案, with the 事项清单 and assessment metrics. "
                  "Times are epoch milliseconds. See cloud_broker/events/README.md.")
    _add_error_handlers(app)
    routes = _Routes(store, catalogue, clock)
    one, errors = EventDetail, ERRORS
    app.post(f"{PREFIX}/events", status_code=201, tags=["events"], response_model=one,
             responses=errors)(routes.create_event)
    app.post(f"{PREFIX}/events/by-alarm/{{alarm_id}}/cleared", tags=["events"],
             response_model=one, responses=errors)(routes.alarm_cleared)
    for action in Action:
        app.post(f"{PREFIX}/events/{{event_id}}/{action}", tags=["lifecycle"],
                 response_model=one, responses=errors)(routes.transition_route(action))
    app.get(f"{PREFIX}/events", response_model=list[EventOut], tags=["events"])(
        routes.list_events)
    app.get(f"{PREFIX}/events/{{event_id}}", tags=["events"], response_model=one,
            responses=errors)(routes.show_event)
    app.get(f"{PREFIX}/stats", response_model=StatsOut, tags=["assessment"])(routes.stats)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    def refused(_request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestRefused)
        return JSONResponse({"detail": err.detail, "reason": err.reason}, err.status_code)

    def transition_refused(_request: Request, err: Exception) -> JSONResponse:
        if isinstance(err, TransitionInputError):
            return JSONResponse({"detail": str(err), "reason": "invalid_input"}, 422)
        return JSONResponse({"detail": str(err), "reason": "invalid_transition"}, 409)

    def not_found(_request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(err), "reason": "not_found"}, 404)

    app.add_exception_handler(RequestRefused, refused)
    app.add_exception_handler(TransitionError, transition_refused)
    app.add_exception_handler(EventNotFound, not_found)
