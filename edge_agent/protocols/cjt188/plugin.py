"""CJ/T 188 plugs into the agent: one bus per serial port, shared by every meter on it.

Device params (gateway config `devices[].params`):
    serial_port          the RS-485 / M-Bus adapter, e.g. /dev/ttyUSB0
    address              14 hex digits as printed on the meter (AAAAAAAAAAAAAA: the only meter
                         on the port, read through the broadcast address)
    baudrate             2400 (the standard's rate; some meters take 1200 or 9600)
    parity               E (8E1 is the standard's framing); N or O for odd meters
    clock_utc_offset_h   zone of the meter's clock, 8 (China Standard Time)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from device_profiles.schema import Profile
from edge_agent.config import DeviceConfig
from edge_agent.errors import ConfigError
from edge_agent.protocols import BusPool
from edge_agent.protocols.base import Driver, ProtocolPlugin
from edge_agent.protocols.cjt188.codec import parse_address
from edge_agent.protocols.cjt188.driver import Cjt188Driver
from edge_agent.protocols.cjt188.transport import Cjt188Bus, SerialSettings


class Cjt188Params(BaseModel):
    """A CJ/T 188 meter instance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial_port: str = Field(min_length=1, description="serial device of the bus")
    address: str = Field(pattern=r"^[0-9A-Fa-f]{14}$", description="14 hex digits as printed "
                         "on the meter; AAAAAAAAAAAAAA = the only meter on the port")
    baudrate: Literal[300, 600, 1200, 2400, 4800, 9600, 19200] = 2400
    parity: Literal["E", "N", "O"] = "E"
    clock_utc_offset_h: float = Field(8.0, ge=-12, le=14, description="zone of the meter's "
                                      "clock (8: China Standard Time)")


def _bus(params: Cjt188Params, pool: BusPool) -> Cjt188Bus:
    key = ("cjt188", params.serial_port)
    settings = SerialSettings(params.serial_port, params.baudrate, params.parity)
    bus = pool.buses.get(key)
    if bus is None:
        # Rejected frames are counted in Prometheus once the pool carries the agent's metrics.
        bus = Cjt188Bus(settings, getattr(pool, "metrics", None))
        pool.buses[key] = bus
    assert isinstance(bus, Cjt188Bus)
    if bus.settings != settings:
        raise ConfigError(f"{params.serial_port}: meters on one port must share baud rate and "
                          f"parity ({bus.settings.baudrate} {bus.settings.parity} vs "
                          f"{params.baudrate} {params.parity})")
    return bus


def _create(device: DeviceConfig, params: BaseModel | None, profile: Profile,
            pool: BusPool) -> Driver:
    assert isinstance(params, Cjt188Params), f"device {device.id}: params not validated"
    return Cjt188Driver(profile, _bus(params, pool), parse_address(params.address),
                        params.clock_utc_offset_h)


PLUGIN = ProtocolPlugin(kind="cjt188", params_model=Cjt188Params, create_driver=_create)
