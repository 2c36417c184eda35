"""Protocol registry: profile protocol kind -> driver factory.

Adding a protocol means one folder under edge_agent/protocols/ and one line in `DRIVERS`.
"""

from __future__ import annotations

from collections.abc import Callable

from device_profiles.schema import Profile
from edge_agent.config import DeviceConfig
from edge_agent.protocols.base import Bus, Driver
from edge_agent.protocols.modbus.driver import ModbusDriver
from edge_agent.protocols.modbus.transport import ModbusTcpTransport


class BusPool:
    """Shares one bus per medium (e.g. one TCP connection per Modbus gateway address)."""

    def __init__(self) -> None:
        self.buses: dict[tuple[str, ...], Bus] = {}

    async def close(self) -> None:
        for bus in self.buses.values():
            await bus.close()
        self.buses.clear()


def _modbus_tcp(device: DeviceConfig, profile: Profile, pool: BusPool) -> Driver:
    key = ("modbus_tcp", device.host, str(device.port))
    transport = pool.buses.get(key)
    if transport is None:
        transport = ModbusTcpTransport(device.host, device.port, profile.protocol.timeout_s)
        pool.buses[key] = transport
    assert isinstance(transport, ModbusTcpTransport)
    return ModbusDriver(profile, transport, device.unit)


DRIVERS: dict[str, Callable[[DeviceConfig, Profile, BusPool], Driver]] = {
    "modbus_tcp": _modbus_tcp,
}


def create_driver(device: DeviceConfig, profile: Profile, pool: BusPool) -> Driver:
    """Build the driver for one device instance from its profile's protocol kind."""
    return DRIVERS[profile.protocol.kind](device, profile, pool)
