"""Modbus plugs into the agent: TCP (one connection per gateway address) and RTU (one bus per
serial port)."""

from __future__ import annotations

from pydantic import BaseModel

from device_profiles.schema import Profile
from edge_agent.config import DeviceConfig
from edge_agent.protocols import BusPool
from edge_agent.protocols.base import Driver, ProtocolPlugin
from edge_agent.protocols.modbus.driver import ModbusDriver
from edge_agent.protocols.modbus.transport import ModbusTcpTransport


def _tcp(device: DeviceConfig, _params: BaseModel | None, profile: Profile,
         pool: BusPool) -> Driver:
    key = ("modbus_tcp", device.host, str(device.port))
    transport = pool.buses.get(key)
    if transport is None:
        transport = ModbusTcpTransport(device.host, device.port, profile.protocol.timeout_s)
        pool.buses[key] = transport
    assert isinstance(transport, ModbusTcpTransport)
    return ModbusDriver(profile, transport, device.unit)


MODBUS_TCP = ProtocolPlugin(kind="modbus_tcp", create_driver=_tcp)
# MODBUS_RTU is defined once the RTU transport exists (edge_agent/protocols/modbus/rtu_*.py).
