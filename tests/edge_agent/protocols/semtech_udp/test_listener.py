"""The semtech_udp listener on a real loopback UDP socket, fed by the simulated gateways.

No broker here: readings go to a list. What is proven: acks, exact decoded values, one reading
for a frame two gateways heard, every kind of bad input counted by reason while good frames
keep landing, frame counters kept across a restart (state_path), FPort and CRC handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dciot.runtime import free_port
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.base import Raw
from edge_agent.protocols.semtech_udp.codec import PushData, encode_push_data
from edge_agent.protocols.semtech_udp.config import SemtechUdpConfig
from edge_agent.protocols.semtech_udp.join import build_join_request
from edge_agent.protocols.semtech_udp.listener import SemtechUdpListener, Session
from edge_agent.protocols.semtech_udp.otaa import OtaaDevice
from edge_agent.scaling import to_engineering
from firmware_sims.lorawan_gateway import (
    LorawanSim,
    SimEndDevice,
    SimGateway,
    smoke_detector,
    water_meter,
)

NWK = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
APP = bytes.fromhex("3c4fcf098815f7aba6d2ae2816157e2b")
METER_ADDR, SMOKE_ADDR = 0x26011BDA, 0x26011BDB
GATEWAYS = ["aa555a0000000001", "aa555a0000000002"]


@dataclass
class Collected:
    readings: list[tuple[str, dict[str, Raw], int | None]] = field(default_factory=list)

    def sink(self, device: str, raw: dict[str, Raw], ts: int | None) -> None:
        self.readings.append((device, raw, ts))


@dataclass
class Rig:
    sim: LorawanSim
    meter: SimEndDevice
    smoke: SimEndDevice
    collected: Collected
    metrics: EdgeMetrics
    listener: SemtechUdpListener

    def rejected(self, reason: str) -> float:
        return self.metrics.registry.get_sample_value(
            "dciot_edge_frames_rejected_total", {"protocol": "lorawan", "reason": reason}) or 0.0

    def engineering(self, index: int) -> dict[str, object]:
        device, raw, _ts = self.collected.readings[index]
        profile = self.meter.profile if device == "meter-1" else self.smoke.profile
        return {k: to_engineering(profile.point(k), v) for k, v in raw.items()}


async def until(predicate: Callable[[], object], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def sessions(meter: SimEndDevice, smoke: SimEndDevice) -> list[Session]:
    return [Session("meter-1", meter.profile, METER_ADDR, NWK, APP),
            Session("smoke-1", smoke.profile, SMOKE_ADDR, NWK, APP)]


@contextlib.asynccontextmanager
async def running(settings: SemtechUdpConfig, listener_sessions: list[Session],
                  collected: Collected, metrics: EdgeMetrics,
                  otaa: list[OtaaDevice] | None = None) -> AsyncIterator[SemtechUdpListener]:
    listener = SemtechUdpListener(settings, listener_sessions, metrics, otaa)
    task = asyncio.create_task(listener.run(collected.sink))
    try:
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    port = free_port()
    settings = SemtechUdpConfig(kind="semtech_udp", port=port, dedup_window_ms=100,
                                state_path=tmp_path / "fcnt.sqlite")
    meter = water_meter(METER_ADDR, NWK, APP)
    smoke = smoke_detector(SMOKE_ADDR, NWK, APP)
    collected, metrics = Collected(), EdgeMetrics("gw-test")
    async with (running(settings, sessions(meter, smoke), collected, metrics) as listener,
                LorawanSim("127.0.0.1", port, GATEWAYS, keepalive_s=0.5) as sim):
        sim.add_device(meter)
        sim.add_device(smoke)
        await sim.wait_connected()
        yield Rig(sim, meter, smoke, collected, metrics, listener)


async def test_exact_values_land_once_although_two_gateways_heard_it(rig: Rig) -> None:
    before = time.time() * 1000
    await rig.sim.uplink(rig.meter)
    await until(lambda: rig.collected.readings, "the reading")
    await rig.sim.uplink(rig.smoke)  # windows close in order: a second meter reading
    await until(lambda: len(rig.collected.readings) == 2, "the next reading")  # would be first
    assert [d for d, _r, _t in rig.collected.readings] == ["meter-1", "smoke-1"]
    device, _raw, ts = rig.collected.readings[0]
    assert device == "meter-1"
    assert rig.engineering(0) == {
        "total_volume": 1234.567, "battery": 87, "valve_state": 1, "leak": False,
        "reverse_flow": False, "tamper": False, "water_temperature": 14, "flow": 0.62}
    assert ts is not None and before - 1000 <= ts <= time.time() * 1000  # gateway GPS time
    assert all(g.push_acks == 2 and g.pull_acks >= 1 for g in rig.sim.gateways)


async def test_bad_input_is_counted_by_reason_and_the_stream_goes_on(rig: Rig) -> None:
    await rig.sim.uplink(rig.smoke)
    await rig.sim.uplink(rig.smoke)
    await until(lambda: len(rig.collected.readings) == 2, "the first readings")
    await rig.sim.uplink(rig.smoke, corrupt_mic=True)
    await rig.sim.replay(rig.smoke, 0)  # older than the last accepted frame
    await rig.sim.replay(rig.smoke, 1)  # the last accepted frame again
    await rig.sim.uplink_unknown_device()
    await rig.sim.uplink_crc_error(rig.smoke)
    await rig.sim.send_garbage()
    await rig.sim.send_oversized()
    gateway = rig.sim.gateways[0]
    await gateway.push([{"data": "!!not base64!!"}])
    await gateway.push([{"data": "QAQDAgE=", "size": 9}])
    await gateway.push([{"data": "QAQD"}])
    gateway.send(b"\x02\x00\x01\x00" + bytes.fromhex(GATEWAYS[0]) + b"{not json")
    gateway.send(b"\x07\x00\x01\x00")
    gateway.send(b"\x02\x00")
    rig.smoke.set(smoke_alarm=True, battery=40, temperature=-5)
    await rig.sim.uplink(rig.smoke)
    await until(lambda: len(rig.collected.readings) == 3, "the next good reading")
    assert rig.engineering(2) == {"smoke_alarm": True, "fault": False, "tamper": False,
                                  "self_test": False, "battery": 40, "temperature": -5}
    reasons = ("bad_mic", "replayed_fcnt", "retransmission", "unknown_dev_addr", "bad_crc",
               "unknown_identifier", "oversized", "bad_base64", "size_mismatch",
               "phy_truncated", "bad_json", "bad_version", "truncated")
    # each gateway's copy of the bad-MIC frame is counted; the other faults reach one gateway
    assert {r: rig.rejected(r) for r in reasons} == {
        "bad_mic": 2, "replayed_fcnt": 1, "retransmission": 1, "unknown_dev_addr": 1,
        "bad_crc": 1, "unknown_identifier": 1, "oversized": 1, "bad_base64": 1,
        "size_mismatch": 1, "phy_truncated": 1, "bad_json": 1, "bad_version": 1,
        "truncated": 1}
    assert len(rig.collected.readings) == 3


async def test_a_late_copy_is_a_retransmission_not_a_second_reading(rig: Rig) -> None:
    phy = await rig.sim.uplink(rig.meter, gateways=rig.sim.gateways[:1])
    await until(lambda: rig.collected.readings, "the reading")
    await rig.sim.transmit(phy, rig.sim.gateways[1:])  # the slow gateway's copy, 100+ ms late
    await until(lambda: rig.rejected("retransmission") == 1, "the late copy to be counted")
    assert len(rig.collected.readings) == 1


async def test_counter_survives_a_restart(rig: Rig, tmp_path: Path) -> None:
    await rig.sim.uplink(rig.meter)
    await rig.sim.uplink(rig.meter)
    await until(lambda: len(rig.collected.readings) == 2, "two readings")
    # a second listener with the same state file: the old frames are replays for it too
    port = free_port()
    settings = SemtechUdpConfig(kind="semtech_udp", port=port, state_path=tmp_path /
                                "fcnt.sqlite")
    collected, metrics = Collected(), EdgeMetrics("gw-test")
    async with (running(settings, sessions(rig.meter, rig.smoke), collected, metrics),
                LorawanSim("127.0.0.1", port, GATEWAYS[:1]) as sim):
        await sim.wait_connected()
        await sim.transmit(rig.meter.sent[0])
        await sim.transmit(rig.meter.sent[1])
        await sim.transmit(rig.meter.next_uplink())
        await until(lambda: collected.readings, "the new frame")
        value = metrics.registry.get_sample_value(
            "dciot_edge_frames_rejected_total", {"protocol": "lorawan", "reason": "replayed_fcnt"})
        retransmitted = metrics.registry.get_sample_value(
            "dciot_edge_frames_rejected_total", {"protocol": "lorawan", "reason": "retransmission"})
        assert (value, retransmitted, len(collected.readings)) == (1, 1, 1)


async def test_unexpected_fport_and_mac_only_frames(rig: Rig) -> None:
    from edge_agent.protocols.semtech_udp.lorawan import UplinkSpec, build_uplink

    mac_only = build_uplink(UplinkSpec(METER_ADDR, 0, None), NWK, APP)
    other_port = build_uplink(UplinkSpec(METER_ADDR, 1, 9, b"\x01\x02"), NWK, APP)
    await rig.sim.transmit(mac_only)
    await rig.sim.transmit(other_port)
    rig.meter.fcnt = 2
    await rig.sim.uplink(rig.meter)
    await until(lambda: rig.collected.readings, "the reading")
    assert rig.rejected("unexpected_fport") == 1
    assert len(rig.collected.readings) == 1


async def test_unknown_gateway_is_refused_without_ack() -> None:
    port = free_port()
    settings = SemtechUdpConfig(kind="semtech_udp", port=port, gateways=(GATEWAYS[0],))
    collected, metrics = Collected(), EdgeMetrics("gw-test")
    async with (running(settings, [], collected, metrics),
                LorawanSim("127.0.0.1", port, GATEWAYS) as sim):
        await sim.gateways[0].wait_pulled(5)
        assert await sim.gateways[1].push([]) is False
        assert metrics.registry.get_sample_value(
            "dciot_edge_frames_rejected_total",
            {"protocol": "lorawan", "reason": "unknown_gateway"}) >= 1


async def test_raw_push_data_with_two_rxpk_in_one_datagram(rig: Rig) -> None:
    gateway = rig.sim.gateways[0]
    first, second = rig.meter.next_uplink(), rig.smoke.next_uplink()
    entries = [gateway.rxpk(first, -70, 7.0), gateway.rxpk(second, -71, 6.5)]
    assert await gateway.push(entries)
    await until(lambda: len(rig.collected.readings) == 2, "both readings")
    assert sorted(d for d, _r, _t in rig.collected.readings) == ["meter-1", "smoke-1"]
    gateway.send(encode_push_data(PushData(2, 7, GATEWAYS[0], ({"stat": 1},))))
    await until(lambda: rig.rejected("bad_rxpk") == 1, "an rxpk without data")


APP_KEY = bytes.fromhex("98929b92c49edba9676d646d3b612456")
OTAA_EUI = "0004a30b001c0531"


def _rejected(metrics: EdgeMetrics, reason: str) -> float:
    return metrics.registry.get_sample_value(
        "dciot_edge_frames_rejected_total", {"protocol": "lorawan", "reason": reason}) or 0.0


async def test_otaa_join_accept_timing_session_and_restart(tmp_path: Path) -> None:
    port = free_port()
    settings = SemtechUdpConfig(kind="semtech_udp", port=port, dedup_window_ms=100,
                                state_path=tmp_path / "lorawan.sqlite", net_id="00003f")
    smoke = smoke_detector(0, b"", b"", battery=55).with_otaa(OTAA_EUI, APP_KEY)
    otaa = [OtaaDevice("smoke-otaa", smoke.profile, OTAA_EUI, APP_KEY)]
    collected, metrics = Collected(), EdgeMetrics("gw-test")
    async with (running(settings, [], collected, metrics, otaa),
                LorawanSim("127.0.0.1", port, GATEWAYS, keepalive_s=0.5) as sim):
        await sim.wait_connected()
        downlink = await sim.join(smoke)
        best = sim.gateways[0]  # -60 dBm against -67 dBm
        assert downlink.gateway is best and best.last_tmst is not None
        assert downlink.txpk | {"data": "", "tmst": 0} == {
            "imme": False, "tmst": 0, "freq": 500.9, "rfch": 0, "powe": 17, "modu": "LORA",
            "datr": "SF7BW125", "codr": "4/5", "ipol": True, "size": 17, "ncrc": True,
            "data": ""}  # CN470: uplink channel 3 (470.9 MHz) -> downlink channel 3
        assert downlink.txpk["tmst"] == (best.last_tmst + 5_000_000) % 2**32
        assert downlink.accept is not None and downlink.accept.dev_addr >> 25 == 0x3F
        assert downlink.accept.net_id == 0x3F
        await sim.uplink(smoke)
        await until(lambda: collected.readings, "the first OTAA reading")
        assert collected.readings[0][0] == "smoke-otaa" and collected.readings[0][1][
            "battery"] == 55
        # the same DevNonce again (a replayed join-request), and a stranger's join-request
        await sim.transmit(build_join_request(smoke.app_eui, OTAA_EUI, smoke.dev_nonce,
                                              APP_KEY))
        await sim.transmit(build_join_request("0000000000000000", "00000000000000ff", 1,
                                              APP_KEY))
        await sim.uplink(smoke)  # the session is unchanged
        await until(lambda: len(collected.readings) == 2, "the second OTAA reading")
        assert _rejected(metrics, "replayed_dev_nonce") == 2  # both gateways' copies
        assert _rejected(metrics, "unknown_dev_eui") == 2
    # A restart with the same state: the device goes on without joining again.
    collected, metrics = Collected(), EdgeMetrics("gw-test")
    async with (running(settings, [], collected, metrics, otaa),
                LorawanSim("127.0.0.1", port, GATEWAYS[:1]) as sim):
        await sim.wait_connected()
        await sim.uplink(smoke)
        await until(lambda: collected.readings, "a reading after the restart")
        await sim.join(smoke)  # a new join gives a new session; the old one is gone
        await sim.uplink(smoke)
        await until(lambda: len(collected.readings) == 2, "a reading in the new session")
        assert _rejected(metrics, "unknown_dev_addr") == 0


async def test_join_without_a_pull_path_is_counted() -> None:
    port = free_port()
    settings = SemtechUdpConfig(kind="semtech_udp", port=port, dedup_window_ms=0)
    smoke = smoke_detector(0, b"", b"").with_otaa(OTAA_EUI, APP_KEY)
    collected, metrics = Collected(), EdgeMetrics("gw-test")
    otaa = [OtaaDevice("smoke-otaa", smoke.profile, OTAA_EUI, APP_KEY)]
    async with running(settings, [], collected, metrics, otaa):
        gateway = SimGateway("aa555a00000000ff", "127.0.0.1", port, pull=False)
        await gateway.start()
        try:
            # the listener may still be binding: push until acknowledged
            while not await gateway.push([gateway.rxpk(smoke.join_request(), -70, 5.0)]):
                pass
            await until(lambda: _rejected(metrics, "no_downlink_path") >= 1, "the rejection")
        finally:
            await gateway.stop()
