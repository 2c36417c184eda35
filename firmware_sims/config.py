"""Simulator config: which units of which profile answer on which port, and how time runs.

Modbus TCP `servers`, and the field-protocol simulators, each on its real medium: Modbus RTU
`rtu_buses` and CJ/T 188 `cjt188_buses` on pseudo-terminals (reached through a symlink at a
configured path), GB/T 26875 `uitds` and LoRa gateways (`lorawan`) that connect to an edge
agent's listener. See firmware_sims/sample.yaml for every option with its default. Validation
is strict (frozen, extra="forbid") and cross-checked against the device profiles: profile ids
must exist and speak the section's protocol (Modbus TCP units need a simulator model), unit
ids, component addresses and DevAddrs are unique where they share a medium, ports, names and
links are unique, and every `initial` key is a point of the profile with a value it can hold.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

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


REGISTER_KINDS = frozenset({"modbus_tcp", "modbus_rtu"})
"""Profiles a Modbus server or RTU bus can host (an RTU model behind a TCP gateway too)."""
NAME_PATTERN = r"^[a-z][a-z0-9_-]*$"
HEX_KEY = r"^[0-9A-Fa-f]{32}$"
Initial = dict[str, bool | int | float]


class RtuBusConfig(_Frozen):
    """Modbus RTU units on one pseudo-terminal (an RS-485 segment), paced at the line's speed."""

    name: str = Field(pattern=NAME_PATTERN, description="names the units in the control API: "
                      "'<name>:<unit>'")
    link: Path = Field(description="symlink made to the pty's slave tty at start (replacing one "
                       "left over), removed at stop: the edge's serial_port")
    baudrate: int = Field(9600, ge=300, le=921_600, description="pacing of the answers")
    parity: Literal["N", "E", "O"] = Field("N", description="a pty takes no parity: keep N and "
                                           "use stopbits 2 for the 11-bit character of 8E1")
    stopbits: Literal[1, 2] = 2
    turnaround_s: float = Field(0.005, ge=0, le=1, description="request end to answer start")
    units: tuple[UnitConfig, ...] = Field(min_length=1)


class Cjt188MeterConfig(_Frozen):
    """One CJ/T 188 meter; its cumulative volume grows with its flow over real time."""

    address: str = Field(pattern=r"^[0-9A-Fa-f]{14}$", description="14 hex digits as printed")
    profile: str = Field(description="a cjt188 profile (its meter_type is the T byte)")
    cumulative_m3: float = Field(0.0, ge=0, le=999_999.99)
    flow_m3_per_h: float = Field(0.0, ge=0, le=100)
    battery_low: bool = False
    valve_open: bool = True


class Cjt188BusConfig(_Frozen):
    """CJ/T 188 meters on one pseudo-terminal (an RS-485 / M-Bus segment)."""

    name: str = Field(pattern=NAME_PATTERN, description="names the bus in log lines")
    link: Path = Field(description="symlink made to the pty's slave tty (the edge's serial_port)")
    reply_delay_s: float = Field(0.005, ge=0, le=1, description="request to answer")
    meters: tuple[Cjt188MeterConfig, ...] = Field(min_length=1)


class UitdComponentConfig(_Frozen):
    """A fire-protection component reported by a UITD: its state bits and analog values come
    from its profile's points (`initial`, then forced values)."""

    profile: str = Field(description="a gbt26875 profile, e.g. dc-smokedetector-v1")
    system_type: int = Field(1, ge=0, le=255, description="1 fire alarm system, 11 hydrant...")
    system_address: int = Field(1, ge=0, le=255)
    component_type: int = Field(0, ge=0, le=255, description="42 photoelectric smoke detector")
    component_address: int = Field(ge=0, le=0xFFFFFFFF, description="names the component in "
                                   "the control API: '<uitd name>:<component_address>'")
    description: str = Field("", max_length=31, description="component description (GB 18030)")
    initial: Initial = Field(default_factory=dict)


class UitdConfig(_Frozen):
    """A GB/T 26875.3 user information transmission device: a TCP client of the monitoring
    centre (an edge agent's gbt26875 listener) that keeps reconnecting until it listens."""

    name: str = Field(pattern=NAME_PATTERN)
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535, description="the centre's (edge listener's) port")
    address: str = Field(pattern=r"^[0-9A-Fa-f]{12}$", description="the UITD's source address")
    interval_s: float = Field(30.0, gt=0, description="report every component this often (and "
                              "at once when a fault changes one)")
    retry_s: float = Field(1.0, gt=0, le=60, description="wait before reconnecting")
    components: tuple[UitdComponentConfig, ...] = Field(min_length=1)


class LorawanDeviceConfig(_Frozen):
    """An ABP class A end device heard by every gateway of its network."""

    profile: str = Field(description="a lorawan profile")
    dev_addr: str = Field(pattern=r"^[0-9A-Fa-f]{8}$", description="names the device in the "
                          "control API: '<network name>:<DevAddr, 8 upper-case hex digits>'")
    nwk_s_key: str = Field(pattern=HEX_KEY, repr=False, description="32 hex digits")
    app_s_key: str = Field(pattern=HEX_KEY, repr=False, description="32 hex digits")
    interval_s: float | None = Field(None, gt=0, description="uplink period; default the "
                                     "profile's poll_interval_s")
    initial: Initial = Field(default_factory=dict, description="over the model's plausible "
                             "defaults (water meter, smoke alarm)")


class LorawanConfig(_Frozen):
    """LoRa gateways (Semtech UDP packet forwarders) sending to one server (an edge agent's
    semtech_udp listener), and the end devices they all hear."""

    name: str = Field(pattern=NAME_PATTERN)
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535, description="the server's (edge listener's) UDP port")
    gateways: tuple[str, ...] = Field(min_length=1, description="gateway EUIs, 16 hex digits")
    keepalive_s: float = Field(5.0, gt=0, le=300, description="PULL_DATA period once answered")
    devices: tuple[LorawanDeviceConfig, ...] = Field(min_length=1)

    @field_validator("gateways")
    @classmethod
    def _euis(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [eui for eui in value if len(eui) != 16
               or any(c not in "0123456789abcdefABCDEF" for c in eui)]
        if bad:
            raise ValueError(f"gateway EUIs must be 16 hex digits: {', '.join(bad)}")
        return value


class SimConfig(_Frozen):
    time_scale: float = Field(1.0, gt=0, le=100_000,
                              description="simulated seconds per real second")
    start_time: datetime | None = Field(
        None, description="simulated clock start; default now. Naive times are district "
                          "time (UTC+8)")
    physics: bool = Field(True, description="false freezes every value at its initial value")
    control: ControlConfig
    servers: tuple[ServerConfig, ...] = ()
    rtu_buses: tuple[RtuBusConfig, ...] = ()
    cjt188_buses: tuple[Cjt188BusConfig, ...] = ()
    uitds: tuple[UitdConfig, ...] = ()
    lorawan: tuple[LorawanConfig, ...] = ()

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
        problems = _port_problems(self) + _name_problems(self)
        if not (self.servers or self.rtu_buses or self.cjt188_buses or self.uitds
                or self.lorawan):
            problems.append("no simulators: configure servers, rtu_buses, cjt188_buses, uitds "
                            "or lorawan")
        for s, server in enumerate(self.servers):
            problems += _units_problems(f"servers[{s}]", f"port {server.port}", server.units,
                                        profiles, need_model=True)
        for b, bus in enumerate(self.rtu_buses):
            problems += _units_problems(f"rtu_buses[{b}]", f"bus {bus.name}", bus.units,
                                        profiles, need_model=False)
        problems += _field_problems(self, profiles)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _port_problems(config: SimConfig) -> list[str]:
    ports = [config.control.port] + [s.port for s in config.servers]
    twice = sorted({p for p in ports if ports.count(p) > 1})
    return [f"port {p} is used more than once (control and servers need one each)"
            for p in twice]


def _name_problems(config: SimConfig) -> list[str]:
    named: list[RtuBusConfig | Cjt188BusConfig | UitdConfig | LorawanConfig] = [
        *config.rtu_buses, *config.cjt188_buses, *config.uitds, *config.lorawan]
    names = [n.name for n in named]
    links = [str(b.link) for b in (*config.rtu_buses, *config.cjt188_buses)]
    return ([f"name {n} is used more than once (device names are '<name>:<id>')"
             for n in sorted({n for n in names if names.count(n) > 1})]
            + [f"link {k} is used more than once" for k in sorted({k for k in links
                                                                   if links.count(k) > 1})])


def _units_problems(where: str, medium: str, units: tuple[UnitConfig, ...],
                    profiles: ProfileSet, *, need_model: bool) -> list[str]:
    """Modbus units; on a TCP server their domain needs a physics model (no fixed values)."""
    problems: list[str] = []
    seen: set[int] = set()
    for u, unit in enumerate(units):
        place = f"{where}.units[{u}] (unit {unit.unit})"
        if unit.unit in seen:
            problems.append(f"{place}: unit id {unit.unit} is used twice on {medium}")
        seen.add(unit.unit)
        problems += [f"{place}: {p}" for p in _profile_problems(
            unit.profile, unit.initial, profiles, REGISTER_KINDS, need_model=need_model)]
    return problems


def _field_problems(config: SimConfig, profiles: ProfileSet) -> list[str]:
    """Profiles, initial values and duplicate ids of the CJ/T 188, UITD and LoRaWAN sections."""
    problems: list[str] = []
    for b, bus in enumerate(config.cjt188_buses):
        problems += _duplicates(f"cjt188_buses[{b}]", "meter address",
                                [m.address.upper() for m in bus.meters])
        for m, meter in enumerate(bus.meters):
            problems += [f"cjt188_buses[{b}].meters[{m}]: {p}" for p in _profile_problems(
                meter.profile, {}, profiles, frozenset({"cjt188"}))]
    for i, uitd in enumerate(config.uitds):
        problems += _duplicates(f"uitds[{i}]", "component_address",
                                [c.component_address for c in uitd.components])
        for c, component in enumerate(uitd.components):
            problems += [f"uitds[{i}].components[{c}]: {p}" for p in _profile_problems(
                component.profile, component.initial, profiles, frozenset({"gbt26875"}))]
    for n, network in enumerate(config.lorawan):
        problems += _duplicates(f"lorawan[{n}]", "dev_addr",
                                [d.dev_addr.upper() for d in network.devices])
        for d, device in enumerate(network.devices):
            problems += [f"lorawan[{n}].devices[{d}]: {p}" for p in _profile_problems(
                device.profile, device.initial, profiles, frozenset({"lorawan"}))]
    return problems


def _duplicates(where: str, what: str, values: list[object]) -> list[str]:
    return [f"{where}: {what} {v} is used more than once"
            for v in sorted({str(v) for v in values if values.count(v) > 1})]


def _profile_problems(profile_id: str, initial: Initial, profiles: ProfileSet,
                      kinds: frozenset[str], *, need_model: bool = False) -> list[str]:
    try:
        profile = profiles.get(profile_id)
    except KeyError as err:
        return [str(err.args[0])]
    if profile.protocol.kind not in kinds:
        return [f"profile {profile.id} speaks {profile.protocol.kind}, not "
                f"{' or '.join(sorted(kinds))}"]
    if need_model and profile.domain not in MODELS:
        return [f"profile {profile.id} is of domain {profile.domain}, which has no simulator"]
    names = {p.name: p for p in profile.points}
    problems: list[str] = []
    for name, value in initial.items():
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
