"""The simulators' Modbus servers on real loopback sockets, read with pymodbus's own client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ExceptionResponse

from device_profiles.schema import Point, ProfileSet, RegisterType
from edge_agent.protocols.modbus.codec import decode_point
from edge_agent.scaling import to_engineering
from firmware_sims.control import get_state, send_fault

POLE = "dc-smartpole-v1"
PUMP = "dc-pumpstation-v1"
POLE_VALUES: dict[str, Any] = {
    "lamp_on": True, "dimming": 80, "voltage": 221.3, "current": 0.523, "active_power": 115.7,
    "energy": 12345.67, "pm25": 35, "pm10": 58, "temperature": -3.5, "humidity": 45.2,
    "noise": 52.3, "tilt": 0.37, "emergency_button": False,
}
PUMP_VALUES: dict[str, Any] = {
    "pump1_running": True, "pump2_running": False, "pump1_current": 43.2, "pump2_current": 0.0,
    "pump1_frequency": 49.98, "pump2_frequency": 0.0, "sump_level": 2.75,
    "outlet_pressure": 0.325, "flow": 351.5, "total_volume": 123456.7, "fault_code": 0,
    "pump1_fault": False, "pump2_fault": True,
    "pump1_run_command": False, "pump2_run_command": False, "fault_reset": False,
}
TIMEOUT_S = 0.5


@pytest.fixture
def sim_document() -> dict[str, Any]:
    return {"physics": False, "servers": [
        {"units": [{"unit": 1, "profile": POLE, "initial": POLE_VALUES},
                   {"unit": 2, "profile": POLE, "initial": POLE_VALUES}]},
        {"units": [{"unit": 3, "profile": PUMP, "initial": PUMP_VALUES}]},
    ]}


async def connect(port: int) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=TIMEOUT_S, retries=0)
    assert await client.connect()
    return client


async def read(client: AsyncModbusTcpClient, table: RegisterType, start: int, count: int,
               unit: int) -> list[int] | list[bool]:
    call = {RegisterType.coil: client.read_coils,
            RegisterType.discrete_input: client.read_discrete_inputs,
            RegisterType.holding: client.read_holding_registers,
            RegisterType.input: client.read_input_registers}[table]
    response = await call(start, count=count, device_id=unit)
    assert not response.isError(), response
    if table in {RegisterType.coil, RegisterType.discrete_input}:
        return list(response.bits[:count])
    return list(response.registers)


async def read_point(client: AsyncModbusTcpClient, point: Point, unit: int) -> Any:
    """Read one point at exactly its profile address and decode it as the edge agent does."""
    values = await read(client, point.register_type, point.address, point.words, unit)
    return to_engineering(point, decode_point(point, point.address, values))


@pytest.mark.parametrize(("server", "unit", "profile_id", "expected"), [
    (0, 1, POLE, POLE_VALUES), (0, 2, POLE, POLE_VALUES), (1, 3, PUMP, PUMP_VALUES),
], ids=["pole-unit-1", "pole-unit-2", "pump-unit-3"])
async def test_every_point_reads_back_its_initial_value(
        sims: Any, profiles: ProfileSet, server: int, unit: int, profile_id: str,
        expected: dict[str, Any]) -> None:
    client = await connect(sims.ports[server])
    try:
        got = {p.name: await read_point(client, p, unit)
               for p in profiles.get(profile_id).points}
    finally:
        client.close()
    assert got == expected
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}


async def test_block_reads_from_address_0_decode_each_point_at_its_offset(
        sims: Any, profiles: ProfileSet) -> None:
    """Guards pymodbus's +1 datastore offset: a merged read from 0 sees the same layout."""
    profile = profiles.get(PUMP)
    client = await connect(sims.ports[1])
    try:
        inputs = await read(client, RegisterType.input, 0, 18, 3)
        holding = await read(client, RegisterType.holding, 0, 2, 3)
        bits = await read(client, RegisterType.discrete_input, 0, 2, 3)
        coils = await read(client, RegisterType.coil, 0, 3, 3)
        beyond = await client.read_input_registers(18, count=1, device_id=3)
    finally:
        client.close()
    blocks = {RegisterType.input: inputs, RegisterType.holding: holding,
              RegisterType.discrete_input: bits, RegisterType.coil: coils}
    got = {p.name: to_engineering(p, decode_point(p, 0, blocks[p.register_type]))
           for p in profile.points}
    assert got == PUMP_VALUES
    assert holding[1] == 0b10, "pump2_fault is bit 1 of holding register 1"
    assert inputs[10:12] == [0x4030, 0x0000], "sump_level 2.75 as big-endian float32"
    assert isinstance(beyond, ExceptionResponse) and beyond.exception_code == 2


async def test_float32_word_swapped_tilt_is_laid_out_cdab(sims: Any) -> None:
    client = await connect(sims.ports[0])
    try:
        words = await read(client, RegisterType.input, 20, 2, 1)
    finally:
        client.close()
    # 0.37 as float32 is 0x3EBD70A4; word order little puts the low word first.
    assert words == [0x70A4, 0x3EBD]


async def test_muted_unit_times_out_while_another_unit_on_the_port_answers(
        sims: Any, profiles: ProfileSet) -> None:
    voltage = profiles.get(POLE).point("voltage")
    await asyncio.to_thread(send_fault, sims.control_url, port=sims.ports[0], unit=2,
                            action="mute")
    client = await connect(sims.ports[0])
    try:
        with pytest.raises(ModbusIOException):
            await client.read_input_registers(0, count=1, device_id=2)
        assert await read_point(client, voltage, 1) == 221.3
        await asyncio.to_thread(send_fault, sims.control_url, port=sims.ports[0], unit=2,
                                action="unmute")
        assert await read_point(client, voltage, 2) == 221.3
    finally:
        client.close()


async def test_client_writes_to_lamp_on_and_dimming_stick(sims: Any, profiles: ProfileSet,
                                                          apoll: Any) -> None:
    pole = profiles.get(POLE)
    client = await connect(sims.ports[0])
    try:
        assert not (await client.write_coil(0, False, device_id=1)).isError()
        assert not (await client.write_register(0, 35, device_id=1)).isError()
        before = (await asyncio.to_thread(get_state, sims.control_url))["time"]
        await apoll(lambda: asyncio.to_thread(
            lambda: get_state(sims.control_url)["time"] > before), what="a physics step")
        assert await read_point(client, pole.point("lamp_on"), 1) is False
        assert await read_point(client, pole.point("dimming"), 1) == 35
        assert await read_point(client, pole.point("lamp_on"), 2) is True
        state = await asyncio.to_thread(get_state, sims.control_url)
        key = f"{sims.ports[0]}:1"
        assert state["devices"][key]["values"]["lamp_on"] is False
        assert state["devices"][key]["values"]["dimming"] == 35
    finally:
        client.close()


async def test_writes_to_read_only_registers_are_refused(sims: Any) -> None:
    client = await connect(sims.ports[1])
    try:
        for response in (await client.write_register(0, 9, device_id=3),
                         await client.write_register(1, 0, device_id=3)):
            assert isinstance(response, ExceptionResponse) and response.exception_code == 2
        assert await read(client, RegisterType.holding, 0, 2, 3) == [0, 0b10]
    finally:
        client.close()
