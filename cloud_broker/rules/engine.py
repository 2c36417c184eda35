"""Turns readings (and silence) into alarm occurrences: raised -> (acknowledged) -> cleared.

One alarm per (device, rule) occurrence; a re-raise after a clear is a new occurrence with a new
id. Pending durations: a rule's condition must hold `raise_after_s` before raising and its clear
condition `clear_after_s` before clearing. Readings older than the newest one already evaluated
for a device (redeliveries, replays) are ignored. Active occurrences are persisted (store.py)
and reloaded at start, so a restart neither raises twice nor loses a clear. Thread-safe: called
from the MQTT thread (readings, acks) and the ticker (silence, pending durations).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from cloud_broker.registry.devices import KnownDevice
from cloud_broker.rules.evaluators import Evaluator, Verdict, evaluator_for
from cloud_broker.rules.store import AlarmStore
from device_profiles.rules import AlarmRule

Value = bool | int | float


@dataclass(frozen=True)
class AlarmEvent:
    """A transition of an occurrence; published as JSON (schema dc.alarm/1)."""

    alarm_id: str
    state: str  # "raised" | "acknowledged" | "cleared"
    device: str
    device_name: str
    gateway: str
    site: str | None
    domain: str
    profile: str
    rule: str
    kind: str
    point: str
    severity: str
    title_zh: str
    description_zh: str
    value: float
    threshold: float
    unit: str
    ts: int  # time of the reading (or tick) that caused this transition, epoch ms
    raised_ts: int
    cleared_ts: int | None = None
    acked_by: str | None = None
    acked_ts: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"schema": "dc.alarm/1", **asdict(self)}


@dataclass
class _RuleState:
    evaluator: Evaluator
    active: AlarmEvent | None = None
    pending_since: int | None = None
    last: Verdict | None = None


class RuleEngine:
    def __init__(self, store: AlarmStore | None = None,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
                 rules_for: Callable[[KnownDevice], tuple[AlarmRule, ...]] = lambda d:
                 d.profile.alarms) -> None:
        self.store = store
        self.new_id = new_id
        self.rules_for = rules_for
        self.states: dict[tuple[str, str], _RuleState] = {}
        self.last_ts: dict[str, int] = {}
        self.last_seen: dict[str, int] = {}
        self._restored: dict[tuple[str, str], AlarmEvent] = {}
        self._lock = threading.RLock()

    def restore(self) -> int:
        """Reload active occurrences from the store; return how many."""
        if self.store is None:
            return 0
        for event in self.store.active():
            event.pop("schema", None)
            restored = AlarmEvent(**event)  # type: ignore[arg-type]
            self._restored[(restored.device, restored.rule)] = restored
        return len(self._restored)

    @property
    def active(self) -> dict[tuple[str, str], AlarmEvent]:
        with self._lock:
            found = {k: s.active for k, s in self.states.items() if s.active is not None}
            return {**{k: v for k, v in self._restored.items() if k not in self.states}, **found}

    def _state(self, device: KnownDevice, rule: AlarmRule) -> _RuleState:
        key = (device.id, rule.id)
        state = self.states.get(key)
        if state is None:
            restored = self._restored.pop(key, None)
            state = self.states[key] = _RuleState(evaluator_for(rule), restored)
        return state

    def evaluate(self, device: KnownDevice, ts: int,
                 values: Mapping[str, Value]) -> list[AlarmEvent]:
        """A reading of `device`; returns the transitions it caused."""
        with self._lock:
            if ts < self.last_ts.get(device.id, -1):
                return []
            self.last_ts[device.id] = ts
            self.last_seen[device.id] = max(ts, self.last_seen.get(device.id, 0))
            events: list[AlarmEvent] = []
            for rule in self.rules_for(device):
                state = self._state(device, rule)
                verdict = state.evaluator.observe(ts, values)
                if verdict is not None:
                    events += self._apply(device, rule, state, verdict, ts)
            return events

    def tick(self, devices: list[KnownDevice], now_ms: int | None = None) -> list[AlarmEvent]:
        """Silence checks and pending durations that expire without a new reading."""
        now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        events: list[AlarmEvent] = []
        with self._lock:
            for device in devices:
                seen = self.last_seen.setdefault(device.id, now_ms)  # grace after start-up
                for rule in self.rules_for(device):
                    state = self._state(device, rule)
                    silent = state.evaluator.silence(now_ms - seen, device.interval_s * 1000)
                    if silent is not None:
                        events += self._apply(device, rule, state, silent, now_ms)
                    elif state.pending_since is not None and state.last is not None:
                        events += self._apply(device, rule, state, state.last, now_ms)
        return events

    def _apply(self, device: KnownDevice, rule: AlarmRule, state: _RuleState, verdict: Verdict,
               ts: int) -> list[AlarmEvent]:
        state.last = verdict
        holding = verdict.clear_condition if state.active else verdict.raise_condition
        if not holding:
            state.pending_since = None
            return []
        state.pending_since = state.pending_since if state.pending_since is not None else ts
        wait_s = rule.clear_after_s if state.active else rule.raise_after_s
        if ts - state.pending_since < wait_s * 1000:
            return []
        state.pending_since = None
        if state.active is None:
            state.active = self._raised(device, rule, verdict, ts)
            event = state.active
        else:
            event = _replace(state.active, state="cleared", value=verdict.value, ts=ts,
                             cleared_ts=ts)
            state.active = None
            state.last = None
        self._save(event)
        return [event]

    def _raised(self, device: KnownDevice, rule: AlarmRule, verdict: Verdict,
                ts: int) -> AlarmEvent:
        point_name = rule.points()[-1] if rule.points() else ""
        point = device.profile.point(point_name) if point_name else None
        unit, label = (point.unit, point.label_zh) if point else ("", "")
        fields = {"device": device.name, "value": verdict.value, "threshold": verdict.threshold,
                  "unit": unit, "label": label}
        return AlarmEvent(
            alarm_id=self.new_id(), state="raised", device=device.id, device_name=device.name,
            gateway=device.gateway, site=device.site, domain=device.domain,
            profile=device.profile.id, rule=rule.id, kind=rule.kind, point=point_name,
            severity=str(rule.severity), title_zh=rule.title_zh.format(**fields),
            description_zh=rule.description_zh.format(**fields), value=verdict.value,
            threshold=verdict.threshold, unit=unit, ts=ts, raised_ts=ts)

    def acknowledge(self, alarm_id: str, by: str, ts: int | None = None) -> AlarmEvent | None:
        """Mark an active occurrence acknowledged; None when no active occurrence has this id."""
        ts = ts if ts is not None else time.time_ns() // 1_000_000
        with self._lock:
            for key, state in list(self.states.items()) + [
                    (k, _RuleState(Evaluator(), v)) for k, v in self._restored.items()]:
                if state.active is not None and state.active.alarm_id == alarm_id:
                    event = _replace(state.active, state="acknowledged", ts=ts, acked_by=by,
                                     acked_ts=ts)
                    if key in self.states:
                        self.states[key].active = event
                    else:
                        self._restored[key] = event
                    self._save(event)
                    return event
        return None

    def _save(self, event: AlarmEvent) -> None:
        if self.store is not None:
            self.store.save(event.as_dict())


def _replace(event: AlarmEvent, **changes: object) -> AlarmEvent:
    return AlarmEvent(**{**asdict(event), **changes})  # type: ignore[arg-type]
