"""Cloud services config: broker, InfluxDB, the known devices, batching and metrics.

See cloud_broker/sample.yaml for every option with its default.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from device_profiles.schema import PROFILES_ROOT
from edge_agent.uplink.contract import ID_RE


class ConfigError(Exception):
    """The cloud config is invalid."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def secret_from_env(env_name: str | None, what: str) -> str | None:
    if env_name is None:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise ConfigError(f"{what} names environment variable {env_name!r}, which is not set")
    return value


class BrokerConfig(_Frozen):
    """The cloud services' broker account (least privilege: see cloud_broker/security)."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_env: str | None = None
    client_id: str = Field("dciot-ingest", description="stable: the persistent session's key")
    session_expiry_s: int = Field(86_400, ge=0, description="how long the broker keeps our "
                                  "queue while we are away")
    receive_maximum: int = Field(10_000, ge=1, le=65_535, description="unacknowledged QoS 1 "
                                 "messages the broker may send us (bounds memory)")
    reconnect_max_s: float = Field(10.0, gt=0, description="reconnect backoff grows from 1 s "
                                   "to this")
    tls_cafile: Path | None = Field(None, description="TLS: verify the broker against this CA "
                                    "(null: plain TCP)")
    tls_certfile: Path | None = Field(None, description="TLS: client certificate (its CN is "
                                      "the account)")
    tls_keyfile: Path | None = Field(None, description="TLS: the certificate's key")

    def password(self) -> str | None:
        return secret_from_env(self.password_env, "broker.password_env")


INFLUX_DURATION_RE = re.compile(r"^(INF|([0-9]+(u|µ|ms|s|m|h|d|w))+)$", re.IGNORECASE)
"""An InfluxQL duration literal (`30d`, `1h30m`) or INF (keep forever)."""


class RetentionConfig(_Frozen):
    """Raw data's retention and the 1-minute / 1-hour aggregates (continuous queries); applied
    idempotently at start-up, InfluxDB 1.x (api v1) only. See cloud_broker/ingest/retention.py."""

    enabled: bool = True
    raw: str = Field("30d", description="raw points: the default policy autogen's duration")
    minute: str = Field("365d", description="rp_1m: 1-minute aggregates")
    hour: str = Field("INF", description="rp_1h: 1-hour aggregates")

    @model_validator(mode="after")
    def _durations(self) -> RetentionConfig:
        for name in ("raw", "minute", "hour"):
            if not INFLUX_DURATION_RE.match(getattr(self, name)):
                raise ValueError(f"retention.{name}: {getattr(self, name)!r} is not an InfluxQL "
                                 "duration (e.g. 30d, 12h, 2w) or INF")
        return self


class InfluxConfig(_Frozen):
    url: str = "http://127.0.0.1:8086"
    api: Literal["v1", "v2"] = "v1"
    database: str = Field("dciot", description="v1: database name")
    username: str | None = Field(None, description="v1: user (optional)")
    password_env: str | None = Field(None, description="v1: env var holding the password")
    org: str | None = Field(None, description="v2: organisation")
    bucket: str | None = Field(None, description="v2: bucket")
    token_env: str | None = Field(None, description="v2: env var holding the API token")
    timeout_s: float = Field(10.0, gt=0)
    create_database: bool = Field(True, description="v1: CREATE DATABASE at start-up")
    retention: RetentionConfig = RetentionConfig()

    @model_validator(mode="after")
    def _v2_needs_bucket(self) -> InfluxConfig:
        if self.api == "v2" and not (self.org and self.bucket):
            raise ValueError("api v2 needs org and bucket")
        return self


class BatchConfig(_Frozen):
    max_points: int = Field(5_000, ge=1, description="flush when this many points are pending")
    max_delay_ms: int = Field(200, ge=1, description="flush at least this often")
    retry_initial_s: float = Field(0.5, gt=0)
    retry_max_s: float = Field(30.0, gt=0)


class MetricsConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=0, le=65535, description="null disables the endpoint")


class RulesConfig(_Frozen):
    state_path: Path | None = Field(None, description="SQLite file of alarm occurrences; "
                                    "default state/alarms.sqlite beside the config file")
    tick_s: float = Field(1.0, gt=0, le=60, description="how often silence (no_data) and "
                          "pending durations are checked")
    event_centre_url: str | None = Field(None, description="the event centre (城市事件管理); "
                                         "null: alarms are not sent as events")
    outbox_path: Path | None = Field(None, description="durable outbox to the event centre; "
                                     "default state/outbox.sqlite beside the config file")


class RuleOverride(_Frozen):
    """Per-site (or per-device, per-profile) change of a profile's default rule."""

    rule: str = Field(description="rule id in the profile")
    devices: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    enabled: bool = True
    set: dict[str, object] = Field(default_factory=dict, description="fields to change, e.g. "
                                   "raise_at, clear_at, severity, raise_after_s")

    def matches(self, device: str, site: str | None, profile: str) -> bool:
        if not (self.devices or self.sites or self.profiles):
            return True
        return device in self.devices or (site in self.sites) or profile in self.profiles


class DeviceEntry(_Frozen):
    """A device the cloud accepts readings for: its owner gateway and profile."""

    id: str
    gateway: str
    profile: str
    name: str | None = None
    site: str | None = None
    town: str | None = Field(None, description="街道 the site belongs to (dashboards filter "
                             "domain -> town -> site -> device)")
    lat: float | None = Field(None, ge=-90, le=90, description="WGS84 latitude, degrees")
    lon: float | None = Field(None, ge=-180, le=180, description="WGS84 longitude, degrees")
    interval_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ids_fit_topics(self) -> DeviceEntry:
        for value in (self.id, self.gateway):
            if not ID_RE.match(value):
                raise ValueError(f"{value!r} is not a valid id (letters, digits, _ . -)")
        return self


class CloudConfig(_Frozen):
    broker: BrokerConfig = BrokerConfig()
    influx: InfluxConfig = InfluxConfig()
    batch: BatchConfig = BatchConfig()
    metrics: MetricsConfig = MetricsConfig()
    profiles_dir: Path = PROFILES_ROOT
    max_payload_bytes: int = Field(262_144, ge=1024)
    offline_after_intervals: float = Field(3.0, gt=1, description="a device is offline when "
                                           "silent this many poll intervals")
    health_interval_s: float = Field(60.0, gt=0, description="how often device_health, "
                                     "gateway_health, alarm_summary and ingest_stats are "
                                     "written")
    rules: RulesConfig = RulesConfig()
    rule_overrides: tuple[RuleOverride, ...] = ()
    devices: tuple[DeviceEntry, ...] = ()
    registry_path: Path | None = Field(None, description="provisioning registry (SQLite, "
                                       "`dciot gateway/device`): its active devices are known "
                                       "too; relative to the config file")


def load_cloud_config(path: Path) -> CloudConfig:
    """Read and validate the cloud config; raise ConfigError naming every problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from err
    try:
        config = CloudConfig.model_validate(data)
    except ValidationError as err:
        problems = "\n".join(f"  {'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                             for e in err.errors())
        raise ConfigError(f"{path}: invalid cloud config\n{problems}") from err
    if not config.profiles_dir.is_absolute():
        config = config.model_copy(update={"profiles_dir": path.parent / config.profiles_dir})
    if config.registry_path is not None and not config.registry_path.is_absolute():
        config = config.model_copy(update={"registry_path": path.parent / config.registry_path})
    state = config.rules.state_path or Path("state") / "alarms.sqlite"
    outbox = config.rules.outbox_path or Path("state") / "outbox.sqlite"
    state, outbox = (p if p.is_absolute() else path.parent / p for p in (state, outbox))
    return config.model_copy(update={"rules": config.rules.model_copy(
        update={"state_path": state, "outbox_path": outbox})})
