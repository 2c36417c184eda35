"""The CJ/T 188 bus on a real pseudo-terminal against the simulated meters: answers by address,
faults rejected and counted by reason while the bus goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from edge_agent.errors import DeviceTimeout, TransportError
from edge_agent.protocols.cjt188.codec import (
    BadChecksum,
    Truncated,
    answer,
    encode_frame,
    format_address,
    parse_address,
    read_address_request,
    read_data_request,
)
from edge_agent.protocols.cjt188.metering import decode_metering, error_status
from edge_agent.protocols.cjt188.transport import Cjt188Bus, SerialSettings
from firmware_sims.cjt188_meter import Cjt188MeterBus, SimMeter

from .conftest import METER_A, METER_B, PTY_PARITY

Rejected = Callable[[str], float]


async def read_flow(bus: Cjt188Bus, meter: str, ser: int = 1) -> Decimal | None:
    frame = await bus.exchange(read_data_request(parse_address(meter), 0x10, ser), 1.0)
    return decode_metering(frame).cumulative_flow


async def test_meters_on_one_bus_answer_by_address(bus: Cjt188Bus) -> None:
    assert await read_flow(bus, METER_A, 1) == Decimal("1234.56")
    assert await read_flow(bus, METER_B, 2) == Decimal("0.07")


async def test_corrupted_answer_is_rejected_and_counted_then_the_next_lands(
        sim: Cjt188MeterBus, bus: Cjt188Bus, rejected: Rejected) -> None:
    sim.corrupt_next_answer(METER_A)
    with pytest.raises(BadChecksum):
        await read_flow(bus, METER_A, 1)
    assert rejected("bad_checksum") == 1
    assert await read_flow(bus, METER_A, 2) == Decimal("1234.56")
    assert rejected("bad_checksum") == 1 and rejected("stale") == 0


async def test_silent_meter_times_out_while_the_other_answers(
        sim: Cjt188MeterBus, bus: Cjt188Bus) -> None:
    sim.mute(METER_B)
    with pytest.raises(DeviceTimeout, match=METER_B):
        await bus.exchange(read_data_request(parse_address(METER_B), 0x10, 1), 0.2)
    assert await read_flow(bus, METER_A, 2) == Decimal("1234.56")
    sim.mute(METER_B, False)
    assert await read_flow(bus, METER_B, 3) == Decimal("0.07")


async def test_garbage_before_the_answer_is_counted_and_skipped(
        sim: Cjt188MeterBus, bus: Cjt188Bus, rejected: Rejected) -> None:
    sim.prefix_next_answer(METER_A, b"\x00\x13\x37\xff\x68\x10")  # noise with a false start
    assert await read_flow(bus, METER_A) == Decimal("1234.56")
    assert rejected("garbage") >= 1 and rejected("bad_checksum") == 0


async def test_answer_from_another_address_is_counted_and_skipped(
        sim: Cjt188MeterBus, bus: Cjt188Bus, rejected: Rejected) -> None:
    request = read_data_request(parse_address(METER_A), 0x10, 1)
    impostor = answer(request, 0x10, parse_address("11111111111111"), bytes(19))
    sim.prefix_next_answer(METER_A, encode_frame(impostor, 2))
    assert await read_flow(bus, METER_A) == Decimal("1234.56")
    assert rejected("unknown_address") == 1


async def test_truncated_answer_is_rejected_and_counted(
        sim: Cjt188MeterBus, bus: Cjt188Bus, rejected: Rejected) -> None:
    sim.truncate_next_answer(METER_A, keep_bytes=20)
    with pytest.raises(Truncated):
        await bus.exchange(read_data_request(parse_address(METER_A), 0x10, 1), 0.3)
    assert rejected("truncated") == 1
    assert await read_flow(bus, METER_A, 2) == Decimal("1234.56")


async def test_late_answer_is_stale_for_the_next_request(
        sim: Cjt188MeterBus, bus: Cjt188Bus, rejected: Rejected) -> None:
    sim.reply_delay_s = 0.3
    with pytest.raises(DeviceTimeout):
        await bus.exchange(read_data_request(parse_address(METER_A), 0x10, 1), 0.1)
    sim.reply_delay_s = 0.005
    deadline = asyncio.get_running_loop().time() + 5
    while sim.stats["writes"] < 1:  # the late answer is on the wire
        assert asyncio.get_running_loop().time() < deadline, "the late answer never came"
        await asyncio.sleep(0.01)
    assert await read_flow(bus, METER_A, 2) == Decimal("1234.56")
    assert rejected("stale") == 1


async def test_echoing_adapter_is_harmless(meters: list[SimMeter],
                                           rejected: Rejected) -> None:
    async with Cjt188MeterBus(meters, echo=True) as sim:
        bus = Cjt188Bus(SerialSettings(sim.port, 2400, PTY_PARITY))
        assert await read_flow(bus, METER_A) == Decimal("1234.56")
        assert bus.rejections.counts == {}
        await bus.close()


async def test_error_answer_is_returned_with_its_status(
        sim: Cjt188MeterBus, bus: Cjt188Bus) -> None:
    request = read_data_request(parse_address(METER_B), 0x10, 9, di=0xD120)
    frame = await bus.exchange(request, 1.0)
    assert frame.is_error and frame.control == 0xC1
    status = error_status(frame)
    assert status is not None and status.battery_low


async def test_broadcast_read_address_of_the_only_meter() -> None:
    async with Cjt188MeterBus([SimMeter(METER_A)]) as sim:
        bus = Cjt188Bus(SerialSettings(sim.port, 2400, PTY_PARITY))
        frame = await bus.exchange(read_address_request(5), 1.0)
        assert format_address(frame.address) == METER_A
        await bus.close()


async def test_broadcast_to_several_meters_collides_and_is_rejected(
        bus: Cjt188Bus, sim: Cjt188MeterBus, rejected: Rejected) -> None:
    with pytest.raises(BadChecksum):  # the OR-ed answers of METER_A and METER_B
        await bus.exchange(read_address_request(5), 0.3)
    assert sim.stats["collisions"] == 1
    assert rejected("bad_checksum") == 1
    assert await read_flow(bus, METER_A, 6) == Decimal("1234.56")


async def test_missing_port_is_a_transport_error() -> None:
    bus = Cjt188Bus(SerialSettings("/dev/does-not-exist-cjt188"))
    with pytest.raises(TransportError, match="cannot open"):
        await read_flow(bus, METER_A)
