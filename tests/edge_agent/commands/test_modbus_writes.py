"""The Modbus write path commands use (`ModbusDriver.write_point` / `read_point`) over Modbus
RTU on a real pseudo-terminal against the bus simulator, with every write function code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from device_profiles.schema import load_profiles
from edge_agent.errors import DeviceTimeout
from edge_agent.protocols.modbus.bus_budget import SerialLine
from edge_agent.protocols.modbus.driver import ModbusDriver
from edge_agent.protocols.modbus.rtu_transport import ModbusRtuTransport
from edge_agent.scaling import to_engineering
from firmware_sims.rtu_bus import RtuBusSim, model_for

PROFILES = load_profiles()
POLE = PROFILES.get("dc-smartpole-v1")
LINE = SerialLine(19200, "N", 2)


@pytest.fixture
async def sim() -> AsyncIterator[RtuBusSim]:
    models = {7: model_for(POLE, {"dimming": 80, "lamp_on": False})}
    async with RtuBusSim(models, LINE) as bus:
        yield bus


@pytest.fixture
async def transport(sim: RtuBusSim) -> AsyncIterator[ModbusRtuTransport]:
    bus = ModbusRtuTransport(sim.port, LINE)
    bus.attach(7, "pole-rtu", 0.25)
    bus.attach(9, "pole-absent", 0.25)
    yield bus
    await bus.close()


@pytest.mark.parametrize(("point", "value", "function_code"), [
    ("dimming", 35, 6), ("dimming", 64, 16), ("lamp_on", True, 5), ("lamp_on", True, 15)])
async def test_write_then_read_back_over_rtu(sim: RtuBusSim, transport: ModbusRtuTransport,
                                             point: str, value: object,
                                             function_code: int) -> None:
    driver = ModbusDriver(POLE, transport, 7)
    target = POLE.point(point)
    await driver.write_point(target, value, function_code)  # type: ignore[arg-type]
    assert sim.values(7)[point] == value
    assert to_engineering(target, await driver.read_point(target)) == value


async def test_a_write_to_an_absent_unit_times_out(transport: ModbusRtuTransport) -> None:
    with pytest.raises(DeviceTimeout):
        await ModbusDriver(POLE, transport, 9).write_point(POLE.point("dimming"), 10, 6)
