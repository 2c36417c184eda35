"""The gbt26875 listener on a real loopback TCP socket, driven by the simulated UITD
(firmware_sims/gbt26875_uitd.py) and by raw public example frames: confirmations carry the
sent serial number, readings reach the sink with the frame's own time, bad input is counted by
reason and the stream goes on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from device_profiles.schema import load_profiles
from edge_agent.config import DeviceConfig
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.base import Raw
from edge_agent.protocols.gbt26875.codec import (
    Command,
    Header,
    Stamp,
    SystemState,
    decode_frame,
    encode_frame,
    encode_unit,
    unit_of,
)
from edge_agent.protocols.gbt26875.listener import Gbt26875Listener
from edge_agent.protocols.gbt26875.plugin import Gbt26875Params, build_routes
from firmware_sims.gbt26875_uitd import SimulatedUitd, UitdComponent

UITD = "000000000379"
SMOKE = 131082  # area 10, position 2: wire bytes 0A 00 02 00
HYDRANT = 7
Device = tuple[str, str, dict[str, Any]]
DEVICES: list[Device] = [
    # the component of the public example frame below (smoke detector, component type 40)
    ("smoke-ex1", "dc-smokedetector-v1", {"uitd_address": UITD, "system_address": 1,
                                         "component_type": 40, "component_address": SMOKE}),
    ("smoke-01", "dc-smokedetector-v1", {"uitd_address": UITD, "system_address": 1,
                                        "component_type": 42, "component_address": SMOKE}),
    ("hydrant-01", "dc-hydrant-pressure-v1", {"uitd_address": UITD, "system_type": 11,
                                             "system_address": 1, "component_type": 0,
                                             "component_address": HYDRANT}),
    ("fas-01", "dc-fire-controller-v1", {"uitd_address": UITD, "system_address": 1}),
]
# ActorLancer/GB-T-26875.3.2011-rs GB26875文档.md, 示例 1: "2号10区 感烟探测器 火警"
EXAMPLE_FIRE = bytes.fromhex(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 30 00 02"
    " 02 01 01 01 28 0A 00 02 00 02 00" + " 20" * 30 + " 00 02 3A 09 1A 09 0C 46 23 23")
SMOKE_POINTS = {"fire_alarm", "fault", "shielded", "power_fault", "normal", "state_word"}


def instances(devices: list[Device]) -> list[Any]:
    profiles = load_profiles()
    return [(DeviceConfig(id=d, profile=p, params=params), Gbt26875Params(**params),
             profiles.get(p)) for d, p, params in devices]


@dataclass
class Centre:
    """The listener under test, its port, counters and what reached the sink."""

    listener: Gbt26875Listener
    port: int
    metrics: EdgeMetrics
    readings: list[tuple[str, dict[str, Raw], int | None]] = field(default_factory=list)

    def rejected(self, reason: str) -> float:
        return self.metrics.registry.get_sample_value(
            "dciot_edge_frames_rejected_total", {"protocol": "gbt26875", "reason": reason}) or 0.0

    def uitd(self, *components: UitdComponent, address: str = UITD) -> SimulatedUitd:
        return SimulatedUitd("127.0.0.1", self.port, address,
                             components or [UitdComponent(SMOKE)], confirm_timeout_s=1.0)


async def wait_for(predicate: Callable[[], object], timeout_s: float = 5.0,
                   what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def idle_timeout_s() -> float:
    return 30.0


@pytest.fixture
def devices() -> list[Device]:
    return DEVICES


@pytest.fixture
async def centre(idle_timeout_s: float, devices: list[Device]) -> AsyncIterator[Centre]:
    metrics = EdgeMetrics("gw-test")
    listener = Gbt26875Listener("127.0.0.1", 0, build_routes(instances(devices)), metrics,
                                idle_timeout_s=idle_timeout_s)
    running = Centre(listener, 0, metrics)
    task = asyncio.create_task(listener.run(lambda d, v, ts: running.readings.append((d, v, ts))))
    running.port = await asyncio.wait_for(listener.wait_ready(), 5)
    try:
        yield running
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _exchange(port: int, data: bytes, answer_bytes: int = 30) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(answer_bytes), 5)
    finally:
        writer.close()


async def test_public_example_frame_is_confirmed_and_lands_with_its_own_time(
        centre: Centre) -> None:
    answer = decode_frame(await _exchange(centre.port, EXAMPLE_FIRE))
    assert answer.unit is None
    header = answer.header
    assert (header.command, header.serial, header.version) == (Command.CONFIRM, 1, (1, 1))
    assert (header.source, header.destination) == (0x15B38, 0x379)  # swapped
    (device, values, ts) = centre.readings[0]
    assert device == "smoke-ex1" and set(values) == SMOKE_POINTS
    assert values["fire_alarm"] is True and values["fault"] is False
    assert values["state_word"] == 2
    assert ts == 1348624682000  # 2012-09-26 09:58:02 at UTC+8


async def test_simulated_uitd_gets_a_confirm_with_each_serial(centre: Centre) -> None:
    async with centre.uitd() as uitd:
        raised = await uitd.raise_fire_alarm(SMOKE)
        cleared = await uitd.clear_fire_alarm(SMOKE)
        beat = await uitd.heartbeat()
    assert (raised.serial, raised.attempts, raised.confirmed) == (0, 1, True)
    assert (cleared.serial, cleared.confirmed) == (1, True)
    assert (beat.serial, beat.confirmed) == (2, True)
    assert uitd.log.confirmed == [0, 1, 2] and uitd.log.denied == []
    assert [(d, v["fire_alarm"]) for d, v, _ts in centre.readings] == [
        ("smoke-01", True), ("smoke-01", False)]
    for _d, _v, ts in centre.readings:
        assert ts is not None and abs(ts - time.time() * 1000) < 5000


async def test_fault_and_analog_values_reach_their_devices_raw(centre: Centre) -> None:
    hydrant = UitdComponent(HYDRANT, component_type=0, system_type=11)
    async with centre.uitd(UitdComponent(SMOKE), hydrant) as uitd:
        assert (await uitd.set_fault(SMOKE)).confirmed
        assert (await uitd.report_analog(HYDRANT, analog_type=5, raw=3500)).confirmed
        # analog type 4 (MPa) is not a point of this profile: confirmed, nothing to hand on
        assert (await uitd.report_analog(HYDRANT, analog_type=4, raw=3)).confirmed
    assert centre.readings[0][1]["fault"] is True
    assert centre.readings[1][:2] == ("hydrant-01", {"pipe_pressure": 3500})
    assert len(centre.readings) == 2
    assert centre.rejected("unknown_component") == 0


async def test_system_state_reaches_the_system_device(centre: Centre) -> None:
    at = Stamp(2021, 7, 2, 9, 0, 4)
    state = SystemState(1, 1, 1 | 1 << 8, at)  # normal operation, main power fault
    frame = encode_frame(Header(3, at, 0x379, 0, Command.SEND_DATA),
                         encode_unit(unit_of(1, state)))
    assert decode_frame(await _exchange(centre.port, frame)).header.command == Command.CONFIRM
    ((device, values, ts),) = centre.readings
    assert device == "fas-01" and ts == 1625187604000
    assert values["main_power_fault"] is True and values["fire_alarm"] is False
    assert values["state_word"] == 0x0101


async def test_bad_checksum_is_denied_counted_and_the_resend_lands(centre: Centre) -> None:
    async with centre.uitd() as uitd:
        uitd.corrupt_next_checksum()
        delivery = await uitd.raise_fire_alarm(SMOKE)
    assert (delivery.attempts, delivery.denials, delivery.confirmed) == (2, 1, True)
    assert uitd.log.denied == [delivery.serial] and uitd.log.confirmed == [delivery.serial]
    assert centre.rejected("bad_checksum") == 1
    assert [(d, v["fire_alarm"]) for d, v, _ts in centre.readings] == [("smoke-01", True)]
    assert delivery.at is not None and centre.readings[0][2] == delivery.at.to_epoch_ms()


async def test_a_one_off_bad_frame_is_denied_and_the_next_good_one_lands(
        centre: Centre) -> None:
    hydrant = UitdComponent(HYDRANT, component_type=0, system_type=11)
    async with centre.uitd(hydrant) as uitd:
        uitd.corrupt_next_checksum(resend=False)
        lost = await uitd.report_analog(HYDRANT, analog_type=5, raw=500)
        landed = await uitd.report_analog(HYDRANT, analog_type=5, raw=3500)
    assert (lost.attempts, lost.denials, lost.confirmed) == (1, 1, False)
    assert (landed.attempts, landed.confirmed) == (1, True)
    assert centre.rejected("bad_checksum") == 1
    assert [v for _d, v, _ts in centre.readings] == [{"pipe_pressure": 3500}]


async def test_garbage_and_truncated_frames_are_counted_and_the_stream_goes_on(
        centre: Centre) -> None:
    async with centre.uitd() as uitd:
        await uitd.send_garbage(b"\x00\x01garbage\xff")
        await uitd.send_raw(EXAMPLE_FIRE[:40])  # a frame cut short by a reset
        delivery = await uitd.raise_fire_alarm(SMOKE)
    assert (delivery.attempts, delivery.confirmed) == (1, True)
    assert centre.rejected("garbage") == 1 and centre.rejected("truncated") == 1
    assert [d for d, _v, _ts in centre.readings] == ["smoke-01"]


async def test_unknown_uitd_and_unknown_component_are_confirmed_and_counted(
        centre: Centre) -> None:
    async with centre.uitd(address="0000DEADBEEF") as stranger:
        assert (await stranger.raise_fire_alarm(SMOKE)).confirmed
    async with centre.uitd(UitdComponent(999)) as known:
        assert (await known.raise_fire_alarm(999)).confirmed
    assert centre.rejected("unknown_address") == 1
    assert centre.rejected("unknown_component") == 1
    assert centre.readings == []


async def test_bad_data_unit_and_commands_a_centre_does_not_take_are_denied(
        centre: Centre) -> None:
    at = Stamp.from_epoch_ms(int(time.time() * 1000))
    short = encode_frame(Header(5, at, 0x379, 0, Command.SEND_DATA),
                         bytes.fromhex("02 02") + bytes(46))  # says 2 objects, carries 1
    assert decode_frame(await _exchange(centre.port, short)).header.command == Command.DENY
    control = encode_frame(Header(6, at, 0x379, 0, Command.CONTROL), bytes.fromhex("5a 01 00"))
    denied = decode_frame(await _exchange(centre.port, control)).header
    assert (denied.command, denied.serial) == (Command.DENY, 6)
    assert centre.rejected("bad_data_unit") == 1
    assert centre.rejected("unexpected_command") == 1


@pytest.mark.parametrize("idle_timeout_s", [0.3])
async def test_idle_connection_is_closed(centre: Centre) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", centre.port)
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(100), 5) == b""  # closed by the listener
    assert 0.25 < time.monotonic() - started < 4
    writer.close()


MANY = 25


@pytest.mark.parametrize("devices", [[
    (f"smoke-{n:02d}", "dc-smokedetector-v1", {"uitd_address": f"{0x1000 + n:012X}",
                                               "system_address": 1, "component_type": 42,
                                               "component_address": SMOKE})
    for n in range(MANY)]])
async def test_many_uitds_at_once(centre: Centre) -> None:
    uitds = [SimulatedUitd("127.0.0.1", centre.port, f"{0x1000 + n:012X}", [UitdComponent(SMOKE)])
             for n in range(MANY)]
    await asyncio.gather(*(u.start() for u in uitds))
    try:
        deliveries = await asyncio.gather(*(u.raise_fire_alarm(SMOKE) for u in uitds))
    finally:
        await asyncio.gather(*(u.stop() for u in uitds))
    assert all(d.confirmed and d.attempts == 1 for d in deliveries)
    assert sorted(d for d, _v, _ts in centre.readings) == [f"smoke-{n:02d}" for n in range(MANY)]


async def test_stopping_the_listener_closes_its_connections() -> None:
    metrics = EdgeMetrics("gw-test")
    listener = Gbt26875Listener("127.0.0.1", 0, build_routes(instances(DEVICES)), metrics)
    task = asyncio.create_task(listener.run(lambda *_args: None))
    port = await asyncio.wait_for(listener.wait_ready(), 5)
    uitd = SimulatedUitd("127.0.0.1", port, UITD, [UitdComponent(SMOKE)])
    await uitd.start()
    try:
        assert (await uitd.heartbeat()).confirmed
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await wait_for(lambda: not uitd.connected, what="the connection to be closed")
    finally:
        await uitd.stop()


async def test_rejections_are_logged_at_most_once_per_reason_per_10_s(
        centre: Centre, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="edge_agent.protocols.gbt26875.listener")
    async with centre.uitd(address="0000DEADBEEF") as stranger:
        for _ in range(3):
            assert (await stranger.heartbeat()).confirmed
    assert centre.rejected("unknown_address") == 3
    logged = [r.getMessage() for r in caplog.records if "unknown_address" in r.getMessage()]
    assert len(logged) == 1 and "0000DEADBEEF" in logged[0]
