"""Gateway config: who this gateway is, where its broker is, and its device instances.

Profiles describe models; this file lists instances (address, unit id) referencing a profile.
See edge_agent/sample.yaml for every option with its default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from device_profiles.schema import NAME_PATTERN, PROFILES_ROOT, ProfileSet, load_profiles
from edge_agent.errors import ConfigError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsConfig(_Frozen):
    """TLS to the broker: verify it against `cafile`; with `certfile`+`keyfile` the gateway
    authenticates by client certificate (its CN is the gateway id)."""

    cafile: Path
    certfile: Path | None = None
    keyfile: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("certfile and keyfile go together")
        return self


class BrokerConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_env: str | None = Field(
        None, description="name of the environment variable holding the password (never logged)")
    client_id: str | None = Field(None, description="defaults to the gateway id")
    keepalive_s: int = Field(30, ge=5, le=3600)
    max_queued_messages: int = Field(10_000, ge=1, description="in-memory bound while offline")
    reconnect_max_s: float = Field(30.0, gt=0)
    tls: TlsConfig | None = Field(None, description="null: plain TCP")

    def password(self) -> str | None:
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(f"broker.password_env names {self.password_env!r}, which is not set")
        return value


class MetricsConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=0, le=65535, description="null disables the endpoint")


class BufferConfig(_Frozen):
    """The on-disk store-and-forward buffer (see docs/reliability.md)."""

    path: Path | None = Field(None, description="SQLite file; default buffer/<gateway_id>.sqlite "
                              "beside the config file")
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="drop the oldest readings "
                           "beyond this many payload bytes")
    max_age_s: float = Field(7 * 86_400, gt=0, description="drop readings older than this")
    replay_rate_per_s: float = Field(500.0, gt=0, description="backlog readings re-published "
                                     "per second after a reconnect")
    replay_batch: int = Field(50, ge=1, le=1000, description="readings of one device per "
                              "replayed message")
    max_in_flight: int = Field(2000, ge=1, description="messages published but not yet "
                               "acknowledged")
    drain_timeout_s: float = Field(2.0, ge=0, description="on SIGTERM, wait this long for "
                                   "acknowledgements before exiting")


class CommandsConfig(_Frozen):
    """Downlink commands (edge_agent/commands/): requests on dc/v1/gw/<id>/cmd/req/+."""

    enabled: bool = Field(True, description="subscribe to command requests and execute them")
    ledger_path: Path | None = Field(None, description="SQLite ledger of command ids and "
                                     "results; default <gateway_id>.commands.sqlite beside "
                                     "the buffer")
    max_per_device: int = Field(16, ge=1, le=1000, description="commands waiting or running "
                                "per device; beyond it a command is rejected at once")
    max_ids: int = Field(10_000, ge=1, description="command ids the ledger keeps")
    max_age_s: float = Field(7 * 86_400, gt=86_400, description="how long the ledger keeps an "
                             "id (above the 24 h command lifetime, so a redelivery is known)")
    readback_interval_s: float = Field(0.2, gt=0, le=10, description="pause between read-back "
                                       "reads while waiting for a command's effect")


class DeviceConfig(_Frozen):
    id: str = Field(pattern=ID_PATTERN)
    name: str | None = Field(None, description="display name, e.g. 东昌路1号灯杆")
    profile: str
    host: str = Field("127.0.0.1", description="modbus_tcp: device or gateway address")
    port: int = Field(502, ge=1, le=65535, description="modbus_tcp: TCP port")
    unit: int = Field(1, ge=0, le=255, description="modbus_tcp: unit id")
    params: dict[str, Any] = Field(default_factory=dict, description="other protocols: the "
                                   "instance parameters their plugin defines (serial port, "
                                   "meter address, DevAddr and keys, ...)")
    interval_s: float | None = Field(None, gt=0, description="overrides the profile's interval")


class ListenerConfig(BaseModel):
    """A socket receiving pushed frames (GB/T 26875.3, Semtech UDP, ChirpStack MQTT); the
    rest of the entry is validated by the listener plugin named by `kind`."""

    model_config = ConfigDict(frozen=True, extra="allow")
    kind: str


class GatewayConfig(_Frozen):
    gateway_id: str = Field(pattern=ID_PATTERN)
    site: str | None = None
    broker: BrokerConfig = BrokerConfig()
    metrics: MetricsConfig = MetricsConfig()
    buffer: BufferConfig = BufferConfig()
    commands: CommandsConfig = CommandsConfig()
    profiles_dir: Path = PROFILES_ROOT
    unreachable_after_failures: int = Field(3, ge=1, description="failed polls before a device "
                                            "is reported unreachable")
    stats_interval_s: float = Field(60.0, gt=0, description="how often the totals of poll "
                                    "results and rejected frames are published "
                                    "(dc.gateway-stats/1); also once on every (re)connect")
    devices: tuple[DeviceConfig, ...] = Field(min_length=1)
    listeners: tuple[ListenerConfig, ...] = ()

    @model_validator(mode="after")
    def _unique_devices(self) -> GatewayConfig:
        ids = [d.id for d in self.devices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate device ids: {', '.join(dupes)}")
        return self


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid gateway config"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        lines.append(f"  {loc}: {e['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def load_gateway_config(path: Path) -> tuple[GatewayConfig, ProfileSet]:
    """Read the config and the profiles it references; raise ConfigError naming every problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from err
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(path, err)) from err
    profiles_dir = config.profiles_dir
    if not profiles_dir.is_absolute():
        profiles_dir = path.parent / profiles_dir
    buffer_path = config.buffer.path or Path("buffer") / f"{config.gateway_id}.sqlite"
    if not buffer_path.is_absolute():
        buffer_path = path.parent / buffer_path
    ledger_path = (config.commands.ledger_path
                   or buffer_path.with_name(f"{config.gateway_id}.commands.sqlite"))
    if not ledger_path.is_absolute():
        ledger_path = path.parent / ledger_path
    config = config.model_copy(update={
        "buffer": config.buffer.model_copy(update={"path": buffer_path}),
        "commands": config.commands.model_copy(update={"ledger_path": ledger_path})})
    profiles = load_profiles(profiles_dir)
    unknown = sorted({d.profile for d in config.devices} - set(profiles.profiles))
    if unknown:
        raise ConfigError(f"{path}: devices reference unknown profiles: {', '.join(unknown)}")
    return config, profiles


__all__ = [
    "NAME_PATTERN",
    "BrokerConfig",
    "BufferConfig",
    "CommandsConfig",
    "DeviceConfig",
    "GatewayConfig",
    "ListenerConfig",
    "MetricsConfig",
    "TlsConfig",
    "load_gateway_config",
]
