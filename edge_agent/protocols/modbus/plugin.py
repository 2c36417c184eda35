"""Modbus plugs into the agent: TCP (one connection per gateway address) and RTU (one bus per
serial port)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from device_profiles.schema import ModbusRtuProtocol, Profile
from edge_agent.config import DeviceConfig
from edge_agent.errors import ConfigError
from edge_agent.protocols import BusPool
from edge_agent.protocols.base import Driver, ProtocolPlugin
from edge_agent.protocols.modbus.bus_budget import SerialLine, rtu_bus_warnings
from edge_agent.protocols.modbus.driver import ModbusDriver, UnitBackoff
from edge_agent.protocols.modbus.rtu_transport import ModbusRtuTransport
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


class ModbusRtuParams(BaseModel):
    """A Modbus RTU device's `params:` in the gateway config. Every device on one serial port
    must give the same line settings (baudrate, parity, stopbits)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial_port: str = Field(min_length=1, description="tty path of the RS-485 adapter, e.g. "
                             "/dev/ttyUSB0 or /dev/serial/by-id/...")
    baudrate: int = Field(9600, ge=300, le=921_600, description="bits per second")
    parity: Literal["N", "E", "O"] = Field("E", description="N none, E even, O odd")
    stopbits: Literal[1, 2] = Field(1, description="1 or 2 (8N2 when the device has no parity)")
    unit: int = Field(1, ge=1, le=247, description="the device's slave address on the bus")

    @property
    def line(self) -> SerialLine:
        return SerialLine(self.baudrate, self.parity, self.stopbits)


def _rtu(device: DeviceConfig, params: BaseModel | None, profile: Profile,
         pool: BusPool) -> Driver:
    assert isinstance(params, ModbusRtuParams)
    assert isinstance(profile.protocol, ModbusRtuProtocol)
    key = ("modbus_rtu", params.serial_port)
    bus = pool.buses.get(key)
    if bus is None:
        # BusPool carries no metrics yet: count rejected frames once the app gives it some.
        bus = ModbusRtuTransport(params.serial_port, params.line,
                                 metrics=getattr(pool, "metrics", None))
        pool.buses[key] = bus
    assert isinstance(bus, ModbusRtuTransport)
    if bus.line != params.line:
        raise ConfigError(f"device {device.id}: serial port {params.serial_port} runs at "
                          f"{bus.line.describe()} for the other devices on it, not "
                          f"{params.line.describe()}")
    try:
        bus.attach(params.unit, device.id, profile.protocol.timeout_s)
    except ValueError as err:
        raise ConfigError(f"device {device.id}: {err}") from err
    return ModbusDriver(profile, bus, params.unit, backoff=UnitBackoff())


MODBUS_RTU = ProtocolPlugin(kind="modbus_rtu", params_model=ModbusRtuParams, create_driver=_rtu,
                            check_devices=rtu_bus_warnings)
