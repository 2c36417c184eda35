"""GB/T 26875.3 plugs into the agent: a pushed protocol (no driver) served by a TCP listener that
user information transmission devices (UITDs) connect to. See README.md and sample.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from device_profiles.schema import Profile
from edge_agent.config import DeviceConfig
from edge_agent.errors import ConfigError
from edge_agent.protocols.base import ListenerContext, ListenerPlugin, ProtocolPlugin
from edge_agent.protocols.gbt26875.codec import parse_address
from edge_agent.protocols.gbt26875.listener import Gbt26875Listener, Route, RouteKey, Routes


class Gbt26875Params(BaseModel):
    """Which component of which UITD a device instance is. Without component_type and
    component_address the device is the fire-protection system itself (its system-state
    reports, data unit type 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uitd_address: str = Field(pattern=r"^[0-9A-Fa-f]{12}$", description="the UITD's 48-bit "
                              "source address as 12 hex digits, most significant first (wire "
                              "bytes 79 03 00 00 00 00 are 000000000379)")
    system_type: int = Field(1, ge=0, le=255, description="system type flag (1 = fire alarm "
                             "system, 11 = hydrant system, 12 = sprinkler system, ...)")
    system_address: int = Field(ge=0, le=255, description="system address set in the controller")
    component_type: int | None = Field(None, ge=0, le=255, description="component type (40 "
                                       "smoke detector, 42 photoelectric smoke detector, ...)")
    component_address: int | None = Field(None, ge=0, le=0xFFFFFFFF, description="the 4-byte "
                                          "component address read low byte first")

    @model_validator(mode="after")
    def _component_together(self) -> Gbt26875Params:
        if (self.component_type is None) != (self.component_address is None):
            raise ValueError("component_type and component_address go together")
        return self


class Gbt26875ListenerConfig(BaseModel):
    """A `listeners:` entry: where UITDs connect."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["gbt26875"]
    host: str = Field("127.0.0.1", description="listen address")
    port: int = Field(ge=0, le=65535, description="TCP port the UITDs are configured with "
                      "(0 picks a free one, for tests)")
    idle_timeout_s: float = Field(90.0, gt=0, le=86_400, description="close a connection that "
                                  "sent nothing for this long (UITDs send a heartbeat every "
                                  "20-30 s)")
    utc_offset_h: float = Field(8.0, ge=-12, le=14, description="the UITDs' local time zone: "
                                "their time labels are local time")


def build_routes(devices: list[tuple[DeviceConfig, BaseModel | None, Profile]]) -> Routes:
    """UITD address -> component -> device; two devices on one component is a ConfigError."""
    routes: Routes = {}
    owners: dict[tuple[int, RouteKey], str] = {}
    for device, params, profile in devices:
        assert isinstance(params, Gbt26875Params)
        uitd = parse_address(params.uitd_address)
        key: RouteKey = (params.system_type, params.system_address, params.component_type,
                         params.component_address)
        if (uitd, key) in owners:
            raise ConfigError(f"devices {owners[uitd, key]} and {device.id} are the same "
                              f"component {key} of UITD {params.uitd_address}")
        owners[uitd, key] = device.id
        points = tuple((p.name, p.field) for p in profile.points if p.field is not None)
        routes.setdefault(uitd, {})[key] = Route(device.id, points)
    return routes


def _create(context: ListenerContext) -> Gbt26875Listener:
    settings = context.config
    assert isinstance(settings, Gbt26875ListenerConfig)
    return Gbt26875Listener(settings.host, settings.port, build_routes(context.devices),
                            context.metrics,
                            idle_timeout_s=settings.idle_timeout_s,
                            utc_offset_h=settings.utc_offset_h)


PLUGIN = ProtocolPlugin(kind="gbt26875", params_model=Gbt26875Params)
LISTENER = ListenerPlugin(kind="gbt26875", serves=frozenset({"gbt26875"}),
                          config_model=Gbt26875ListenerConfig, create=_create,
                          default_entry={"kind": "gbt26875", "host": "0.0.0.0", "port": 9527})
