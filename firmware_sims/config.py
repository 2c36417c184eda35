"""Simulator config: which units of which profile answer on which port, and how time runs.

See firmware_sims/sample.yaml for every option with its default. Validation is strict
(frozen, extra="forbid") and cross-checked against the device profiles: profile ids must exist
and have a simulator model, unit ids are unique per server, ports unique, and every `initial`
key is a point of the unit's profile with a value its registers can hold.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from device_profiles.schema import ProfileError, ProfileSet, load_profiles
from firmware_sims.clock import DISTRICT_TZ
from firmware_sims.device import coerce_value
from firmware_sims.errors import SimConfigError
from firmware_sims.models import MODELS


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ControlConfig(_Frozen):
    """Where the HTTP control API listens (keep it on loopback: it has no authentication)."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)


class UnitConfig(_Frozen):
    """One simulated device behind a server: a Modbus unit id running one profile."""

    unit: int = Field(ge=1, le=247)
    profile: str = Field(description="profile id, e.g. dc-smartpole-v1")
    seed: int = Field(0, description="seed of the unit's random numbers (noise, rain, ...)")
    initial: dict[str, bool | int | float] = Field(
        default_factory=dict, description="initial engineering values by point name")


class ServerConfig(_Frozen):
    """One Modbus TCP endpoint (a gateway in front of an RS-485 bus) hosting many unit ids."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    units: tuple[UnitConfig, ...] = Field(min_length=1)


class SimConfig(_Frozen):
    time_scale: float = Field(1.0, gt=0, le=100_000,
                              description="simulated seconds per real second")
    start_time: datetime | None = Field(
        None, description="simulated clock start; default now. Naive times are district "
                          "time (UTC+8)")
    physics: bool = Field(True, description="false freezes every value at its initial value")
    control: ControlConfig
    servers: tuple[ServerConfig, ...] = Field(min_length=1)

    @field_validator("start_time")
    @classmethod
    def _district_time(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=DISTRICT_TZ)
        return value

    @model_validator(mode="after")
    def _check_cross_references(self, info: ValidationInfo) -> SimConfig:
        context = info.context if isinstance(info.context, dict) else {}
        profiles = context.get("profiles")
        if not isinstance(profiles, ProfileSet):
            profiles = load_profiles()
        problems = _port_problems(self)
        for s, server in enumerate(self.servers):
            seen: set[int] = set()
            for u, unit in enumerate(server.units):
                where = f"servers[{s}].units[{u}] (unit {unit.unit})"
                if unit.unit in seen:
                    problems.append(f"{where}: unit id {unit.unit} is used twice on port "
                                    f"{server.port}")
                seen.add(unit.unit)
                problems += [f"{where}: {p}" for p in _unit_problems(unit, profiles)]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _port_problems(config: SimConfig) -> list[str]:
    ports = [config.control.port] + [s.port for s in config.servers]
    twice = sorted({p for p in ports if ports.count(p) > 1})
    return [f"port {p} is used more than once (control and servers need one each)"
            for p in twice]


def _unit_problems(unit: UnitConfig, profiles: ProfileSet) -> list[str]:
    try:
        profile = profiles.get(unit.profile)
    except KeyError as err:
        return [str(err.args[0])]
    if profile.domain not in MODELS:
        return [f"profile {profile.id} is of domain {profile.domain}, which has no simulator"]
    names = {p.name: p for p in profile.points}
    problems: list[str] = []
    for name, value in unit.initial.items():
        if name not in names:
            problems.append(f"initial.{name}: profile {profile.id} has no such point")
            continue
        try:
            coerce_value(names[name], value)
        except ValueError as err:
            problems.append(f"initial.{name}: {err}")
    return problems


def load_sim_config(path: Path | str, profiles: ProfileSet | None = None) -> SimConfig:
    """Read and validate a simulator config; raise SimConfigError listing every problem.

    Profiles default to every profile under device_profiles/.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SimConfigError(str(path), [f"cannot read YAML: {err}"]) from err
    if not isinstance(data, dict):
        raise SimConfigError(str(path), ["top level must be a mapping"])
    try:
        return SimConfig.model_validate(data, context={"profiles": profiles or load_profiles()})
    except ProfileError as err:
        raise SimConfigError(str(path), [f"profiles: {err}"]) from err
    except ValidationError as err:
        problems = []
        for e in err.errors():
            where = ".".join(str(part) for part in e["loc"]) or "(top level)"
            problems.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
        raise SimConfigError(str(path), problems) from err
