"""Modbus RTU transport and driver on a real pseudo-terminal, against the bus simulator.

The line is 8N2 (11 bits per character, like the default 8E1): Linux refuses parity settings
on a pty (tcsetattr EINVAL), see edge_agent/protocols/modbus/README.md.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from device_profiles.schema import RegisterType, load_profiles
from edge_agent.errors import DeviceException, DeviceTimeout, FrameError, TransportError
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.modbus.bus_budget import SerialLine
from edge_agent.protocols.modbus.driver import ModbusDriver, UnitBackedOff, UnitBackoff
from edge_agent.protocols.modbus.rtu_codec import Request, WriteResponse
from edge_agent.protocols.modbus.rtu_transport import ModbusRtuTransport
from edge_agent.scaling import to_engineering
from firmware_sims.rtu_bus import RtuBusSim, model_for

PROFILES = load_profiles()
LINE = SerialLine(19200, "N", 2)
TIMEOUT_S = 0.25
UNITS = {
    1: ("dc-elecfire-v1", {"residual_current": 120, "cable_temp_1": 35.2, "cable_temp_2": 41.0,
                           "cable_temp_3": 28.7, "cable_temp_4": -5.3, "probe_fault": True,
                           "temp_alarm_2": True}),
    2: ("generic-pt485-hydrant", {"pressure": 0.352, "decimal_places": 3}),
    3: ("crowcon-xgardiq", {"gas_concentration": 12.5, "sensor_status": 0,
                            "alarm1_active": False}),
    4: ("dc-pumpstation-v1", {"sump_level": 2.75, "pump1_current": 43.2}),
    5: ("dc-elecfire-v1", {"residual_current": 7}),
    6: ("dc-smartpole-v1", {"dimming": 80, "lamp_on": False}),
}


@pytest.fixture
async def sim() -> AsyncIterator[RtuBusSim]:
    models = {u: model_for(PROFILES.get(p), initial) for u, (p, initial) in UNITS.items()}
    async with RtuBusSim(models, LINE) as bus:
        yield bus


@pytest.fixture
async def transport(sim: RtuBusSim) -> AsyncIterator[ModbusRtuTransport]:
    bus = ModbusRtuTransport(sim.port, LINE, EdgeMetrics("gw-test"))
    for unit in UNITS:
        bus.attach(unit, f"dev-{unit}", TIMEOUT_S)
    yield bus
    await bus.close()


def driver(transport: ModbusRtuTransport, unit: int, backoff: UnitBackoff | None = None
           ) -> ModbusDriver:
    return ModbusDriver(PROFILES.get(UNITS[unit][0]), transport, unit, backoff)


def rejected(transport: ModbusRtuTransport, reason: str) -> float:
    assert transport.metrics is not None
    value = transport.metrics.registry.get_sample_value(
        "dciot_edge_frames_rejected_total", {"protocol": "modbus_rtu", "reason": reason})
    return value or 0.0


async def engineering(d: ModbusDriver, unit: int) -> dict[str, object]:
    profile = PROFILES.get(UNITS[unit][0])
    return {k: to_engineering(profile.point(k), v) for k, v in (await d.read()).items()}


async def test_every_unit_reads_exactly_what_it_holds(sim: RtuBusSim,
                                                      transport: ModbusRtuTransport) -> None:
    for unit in UNITS:
        assert await engineering(driver(transport, unit), unit) == sim.values(unit)
    assert sim.stats.answers == {u: len(driver(transport, u).requests) for u in UNITS}


async def test_concurrent_polls_take_turns_with_the_silence_kept(
        sim: RtuBusSim, transport: ModbusRtuTransport) -> None:
    drivers = {u: driver(transport, u) for u in UNITS}

    async def poll(unit: int) -> None:
        for _ in range(5):
            assert await engineering(drivers[unit], unit) == sim.values(unit)

    await asyncio.gather(*(poll(u) for u in UNITS))
    assert sim.stats.silence_violations == 0
    assert sim.stats.min_gap_s >= LINE.silence_s
    assert sim.stats.bad_requests == sim.stats.garbage_bytes == 0


async def test_crc_error_is_counted_and_the_next_poll_succeeds(
        sim: RtuBusSim, transport: ModbusRtuTransport) -> None:
    d = driver(transport, 2)
    await sim.corrupt_next(2)
    started = time.monotonic()
    with pytest.raises(FrameError, match="bad_crc"):
        await d.read()
    assert time.monotonic() - started < TIMEOUT_S  # failed at once, not at the timeout
    assert rejected(transport, "bad_crc") == 1 and sim.stats.corrupted == 1
    assert await engineering(d, 2) == sim.values(2)
    await sim.force(2, "pressure", 0.121)
    assert (await engineering(d, 2))["pressure"] == 0.121
    assert rejected(transport, "bad_crc") == 1


async def test_exception_answer_raises_device_exception(transport: ModbusRtuTransport) -> None:
    async with transport.lock:
        with pytest.raises(DeviceException) as err:
            await transport.read(RegisterType.holding, 500, 2, 3)
    assert err.value.code == 2


async def test_writes_are_echoed_and_read_back(sim: RtuBusSim,
                                              transport: ModbusRtuTransport) -> None:
    async with transport.lock:
        assert await transport.transact(Request(6, 6, 0, 1, (55,))) == WriteResponse(6, 6, 0, 55)
        assert await transport.transact(Request(6, 5, 0, 1, (1,))) == WriteResponse(6, 5, 0, 1)
        assert await transport.transact(Request(6, 16, 0, 1, (60,))) == WriteResponse(
            6, 16, 0, 1)
        with pytest.raises(DeviceException):  # holding 1 is no writable point: code 2
            await transport.transact(Request(6, 16, 1, 1, (1,)))
    values = await engineering(driver(transport, 6), 6)
    assert (values["dimming"], values["lamp_on"]) == (60, True) == (
        sim.values(6)["dimming"], sim.values(6)["lamp_on"])


async def test_muted_unit_times_out_and_others_answer(sim: RtuBusSim,
                                                      transport: ModbusRtuTransport) -> None:
    await sim.mute(3)
    with pytest.raises(DeviceTimeout):
        await driver(transport, 3).read()
    assert await engineering(driver(transport, 1), 1) == sim.values(1)
    await sim.mute(3, False)
    assert await engineering(driver(transport, 3), 3) == sim.values(3)


async def test_late_answer_of_a_slow_unit_is_dropped_not_taken_for_the_next(
        sim: RtuBusSim, transport: ModbusRtuTransport) -> None:
    await sim.slow(3, 1.5 * TIMEOUT_S)
    with pytest.raises(DeviceTimeout):
        await driver(transport, 3).read()
    await asyncio.sleep(2 * TIMEOUT_S)  # the late answer arrives in the meantime
    assert await engineering(driver(transport, 1), 1) == sim.values(1)
    assert rejected(transport, "stale") == 1
    assert sim.stats.answers[3] == 1


async def test_dead_unit_does_not_starve_the_others(sim: RtuBusSim,
                                                    transport: ModbusRtuTransport) -> None:
    await sim.mute(5)
    cycles = 30
    outcomes: dict[int, list[str]] = {u: [] for u in (1, 2, 3, 5)}

    async def poll(unit: int) -> None:  # like the scheduler: one poll per cycle
        d = driver(transport, unit, UnitBackoff())
        for _ in range(cycles):
            try:
                await d.read()
                outcomes[unit].append("ok")
            except UnitBackedOff:
                outcomes[unit].append("skipped")
            except DeviceTimeout:
                outcomes[unit].append("timeout")
            await asyncio.sleep(0.01)

    await asyncio.gather(*(poll(u) for u in outcomes))
    assert all(outcomes[u] == ["ok"] * cycles for u in (1, 2, 3))
    # timeouts at cycles 1 and 2, then 1, 2, 4, 8, 16 cycles skipped between attempts
    attempts = [i + 1 for i, o in enumerate(outcomes[5]) if o == "timeout"]
    assert attempts == [1, 2, 4, 7, 12, 21]
    assert sim.stats.requests[5] == len(attempts)


def test_backoff_never_waits_longer_than_max_gap() -> None:
    now = [0.0]
    backoff = UnitBackoff(clock=lambda: now[0])
    attempts = []
    for cycle in range(1, 60):
        now[0] = cycle * 10.0  # the scheduler's cycle: 10 s
        if not backoff.skip():
            attempts.append(cycle)
            backoff.timed_out()
    assert attempts[:5] == [1, 2, 4, 7, 12]
    gaps = {b - a for a, b in itertools.pairwise(attempts)}
    assert max(gaps) == 6  # never more than max_gap_s (60 s) between attempts
    backoff.answered()
    assert not backoff.skip() and backoff.timeouts == 0 and backoff.skip_left == 0


async def test_second_master_cannot_open_the_port(sim: RtuBusSim,
                                                  transport: ModbusRtuTransport) -> None:
    await driver(transport, 2).read()
    other = ModbusRtuTransport(sim.port, LINE)
    with pytest.raises(TransportError, match="cannot open"):
        async with other.lock:
            await other.read(RegisterType.holding, 2, 3, 2)


async def test_missing_port_is_a_transport_error(tmp_path: object) -> None:
    bus = ModbusRtuTransport("/dev/ttyDOES-NOT-EXIST", LINE)
    with pytest.raises(TransportError, match="cannot open"):
        await bus.read(RegisterType.holding, 0, 1, 1)


def test_same_unit_twice_on_one_bus_is_refused() -> None:
    bus = ModbusRtuTransport("/dev/ttyUSB0", LINE)
    bus.attach(1, "a", 0.5)
    bus.attach(1, "a", 0.5)
    with pytest.raises(ValueError, match="unit 1 is used by both a and b"):
        bus.attach(1, "b", 0.5)
