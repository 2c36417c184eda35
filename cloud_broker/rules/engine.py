"""Threshold alarms with hysteresis: one alarm per (device, rule) occurrence. Pure.

A rule raises when its point crosses `raise_at` and clears only once the value is back past
`clear_at`; readings in between change nothing, so an alarm is never repeated per reading.
Readings older than the newest one already evaluated for a device (redeliveries, replays) are
ignored, so they cannot re-raise or clear an alarm out of order. A re-raise after a clear is a
new occurrence with a new id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from cloud_broker.registry.devices import KnownDevice
from device_profiles.schema import ThresholdAlarm

Value = bool | int | float


@dataclass(frozen=True)
class AlarmEvent:
    """An alarm raised or cleared; published as JSON on the alarm topic (schema dc.alarm/1)."""

    alarm_id: str
    state: str  # "raised" | "cleared"
    device: str
    device_name: str
    gateway: str
    domain: str
    profile: str
    rule: str
    point: str
    severity: str
    title_zh: str
    value: float
    threshold: float
    clear_threshold: float
    unit: str
    ts: int  # time of the reading that raised or cleared it (epoch ms)
    raised_ts: int

    def as_dict(self) -> dict[str, object]:
        return {"schema": "dc.alarm/1", **asdict(self)}


@dataclass
class _Active:
    alarm_id: str
    title_zh: str
    raised_ts: int


def _crossed_raise(rule: ThresholdAlarm, value: float) -> bool:
    return value > rule.raise_at if rule.direction == "above" else value < rule.raise_at


def _crossed_clear(rule: ThresholdAlarm, value: float) -> bool:
    return value < rule.clear_at if rule.direction == "above" else value > rule.clear_at


class ThresholdEngine:
    """Holds which alarms are active and turns readings into alarm events."""

    def __init__(self, new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.new_id = new_id
        self.active: dict[tuple[str, str], _Active] = {}
        self.last_ts: dict[str, int] = {}

    def evaluate(self, device: KnownDevice, ts: int,
                 values: Mapping[str, Value]) -> list[AlarmEvent]:
        if ts < self.last_ts.get(device.id, -1):
            return []
        self.last_ts[device.id] = ts
        events: list[AlarmEvent] = []
        for rule in device.profile.alarms:
            if rule.point not in values:
                continue
            value = float(values[rule.point])
            key = (device.id, rule.id)
            active = self.active.get(key)
            if active is None and _crossed_raise(rule, value):
                title = rule.title_zh.format(
                    device=device.name, value=value, threshold=rule.raise_at,
                    unit=device.profile.point(rule.point).unit,
                    label=device.profile.point(rule.point).label_zh)
                active = _Active(self.new_id(), title, ts)
                self.active[key] = active
                events.append(self._event(device, rule, active, "raised", value, ts))
            elif active is not None and _crossed_clear(rule, value):
                del self.active[key]
                events.append(self._event(device, rule, active, "cleared", value, ts))
        return events

    @staticmethod
    def _event(device: KnownDevice, rule: ThresholdAlarm, active: _Active, state: str,
               value: float, ts: int) -> AlarmEvent:
        return AlarmEvent(
            alarm_id=active.alarm_id, state=state, device=device.id, device_name=device.name,
            gateway=device.gateway, domain=device.domain, profile=device.profile.id,
            rule=rule.id, point=rule.point, severity=str(rule.severity), title_zh=active.title_zh,
            value=value, threshold=rule.raise_at, clear_threshold=rule.clear_at,
            unit=device.profile.point(rule.point).unit, ts=ts, raised_ts=active.raised_ts)
