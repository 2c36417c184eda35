"""Alarm rule kinds a profile can declare (and a site can override): the declarative half of
the rule engine. The evaluation lives in cloud_broker/rules/.

Every rule has an `id`, a `severity`, a Chinese `title_zh` (and optional `description_zh`)
templated with {device} {value} {threshold} {unit} {label}, and optional pending durations:
the condition must hold `raise_after_s` before the alarm is raised and its clear condition
`clear_after_s` before it clears.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
TEMPLATE_FIELDS = {"device": "d", "value": 1.0, "threshold": 1.0, "unit": "", "label": ""}


class Severity(StrEnum):
    critical = "critical"
    major = "major"
    minor = "minor"
    warning = "warning"


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=NAME_PATTERN, description="rule id, unique in the profile")
    severity: Severity
    title_zh: str = Field(min_length=1, description="str.format template: {device}, {value}, "
                          "{threshold}, {unit}, {label}")
    description_zh: str = Field("", description="longer text, same template fields")
    raise_after_s: float = Field(0.0, ge=0, description="the condition must hold this long "
                                 "before the alarm is raised")
    clear_after_s: float = Field(0.0, ge=0, description="the clear condition must hold this "
                                 "long before the alarm clears")

    @model_validator(mode="after")
    def _check_templates(self) -> _Rule:
        for name in ("title_zh", "description_zh"):
            try:
                getattr(self, name).format(**TEMPLATE_FIELDS)
            except (KeyError, IndexError, ValueError) as err:
                raise ValueError(f"{name} template is invalid: {err}") from err
        return self

    def points(self) -> list[str]:
        """Points the rule reads (checked against the profile)."""
        point = getattr(self, "point", None)
        return [point] if point else []


class _Hysteresis(_Rule):
    direction: Literal["above", "below"]
    raise_at: float = Field(description="raise when the value passes this")
    clear_at: float = Field(description="clear only when the value is back past this")

    @model_validator(mode="after")
    def _check_hysteresis(self) -> _Hysteresis:
        if self.direction == "above" and self.clear_at > self.raise_at:
            raise ValueError("for direction=above clear_at must be <= raise_at")
        if self.direction == "below" and self.clear_at < self.raise_at:
            raise ValueError("for direction=below clear_at must be >= raise_at")
        return self


class ThresholdAlarm(_Hysteresis):
    """Raise when the value crosses `raise_at`; clear only once it is back past `clear_at`.

    above: raise when value > raise_at, clear when value < clear_at (clear_at <= raise_at).
    below: raise when value < raise_at, clear when value > clear_at (clear_at >= raise_at).
    """

    kind: Literal["threshold"] = "threshold"
    point: str = Field(pattern=NAME_PATTERN, description="the point it watches")


class StateAlarm(_Rule):
    """A flag point (fire alarm bit, emergency button): raise while it equals `raise_when`."""

    kind: Literal["state"]
    point: str = Field(pattern=NAME_PATTERN, description="a bool point")
    raise_when: bool = True


class RateAlarm(_Rule):
    """Rate of change over `window_s`, in units per minute (e.g. outlet pressure falling faster
    than 0.05 MPa/min means a burst main). Raise when the rate magnitude in `direction` exceeds
    `raise_rate`, clear when it is back under `clear_rate`."""

    kind: Literal["rate_of_change"]
    point: str = Field(pattern=NAME_PATTERN)
    direction: Literal["rising", "falling"]
    window_s: float = Field(60.0, gt=0, description="the rate is taken over this window")
    raise_rate: float = Field(gt=0, description="units per minute")
    clear_rate: float = Field(ge=0, description="units per minute")

    @model_validator(mode="after")
    def _check_rates(self) -> RateAlarm:
        if self.clear_rate > self.raise_rate:
            raise ValueError("clear_rate must be <= raise_rate")
        return self


class NoDataAlarm(_Rule):
    """The device is silent for longer than `after_intervals` poll intervals: it is offline.
    Clears when it reports again."""

    kind: Literal["no_data"]
    after_intervals: float = Field(3.0, gt=1)


class AggregateAlarm(_Hysteresis):
    """Mean, max or min of a point over the last `window_s`, compared like a threshold."""

    kind: Literal["aggregate"]
    point: str = Field(pattern=NAME_PATTERN)
    function: Literal["mean", "max", "min"]
    window_s: float = Field(gt=0)


class Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    point: str = Field(pattern=NAME_PATTERN)
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    value: float | bool


class ConditionAlarm(_Rule):
    """Several points of one device at once (pump running AND flow near zero = dry running or a
    blockage): raise while `all` hold, clear when any of them no longer holds."""

    kind: Literal["condition"]
    all: tuple[Condition, ...] = Field(min_length=1)

    def points(self) -> list[str]:
        return [c.point for c in self.all]


class NightFlowAlarm(_Rule):
    """A water meter's flow over the night window (local time, UTC+8), from its cumulative
    volume: above `raise_at` m³/h means a leak; the next night at or under `clear_at` clears."""

    kind: Literal["night_flow"]
    point: str = Field(pattern=NAME_PATTERN, description="cumulative volume, m³")
    window_start: str = Field("02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    window_end: str = Field("04:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    raise_at: float = Field(gt=0, description="m³/h")
    clear_at: float = Field(ge=0, description="m³/h")

    @model_validator(mode="after")
    def _check_window(self) -> NightFlowAlarm:
        if self.clear_at > self.raise_at:
            raise ValueError("clear_at must be <= raise_at")
        if _minutes(self.window_end) <= _minutes(self.window_start):
            raise ValueError("the night window must end after it starts (same night)")
        return self


def _minutes(hhmm: str) -> int:
    match = re.match(r"(\d\d):(\d\d)", hhmm)
    assert match
    return int(match[1]) * 60 + int(match[2])


AlarmRule = Annotated[
    ThresholdAlarm | StateAlarm | RateAlarm | NoDataAlarm | AggregateAlarm | ConditionAlarm
    | NightFlowAlarm, Field(discriminator="kind")]

RULE_KINDS = (ThresholdAlarm, StateAlarm, RateAlarm, NoDataAlarm, AggregateAlarm,
              ConditionAlarm, NightFlowAlarm)
NUMERIC_KINDS = {"threshold", "rate_of_change", "aggregate", "night_flow"}
