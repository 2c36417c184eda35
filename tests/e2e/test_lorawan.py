"""End to end for LoRaWAN on real servers: simulated LoRa gateways over UDP -> the edge agent's
semtech_udp listener -> mosquitto -> ingest -> influxd; and a ChirpStack-format uplink event
published to the same mosquitto -> the chirpstack_mqtt listener -> the same pipeline.

The edge agent runs in-process (`run_edge`) so its rejection counters can be read directly;
the cloud ingest runs in a thread. Every uplink here carries the gateways' GPS time, so the
exact timestamp that must land is known too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_broker.app import run_cloud
from cloud_broker.config import CloudConfig
from cloud_broker.metrics import CloudMetrics
from dciot.runtime import InfluxServer, MosquittoServer, free_port
from device_profiles.schema import load_profiles
from edge_agent.app import run_edge
from edge_agent.config import GatewayConfig
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.chirpstack.codec import UplinkEvent, encode_uplink_event
from edge_agent.protocols.semtech_udp.payload import encode_payload
from firmware_sims.lorawan_gateway import LorawanSim, SimEndDevice, smoke_detector, water_meter

pytestmark = pytest.mark.e2e

GATEWAY = "gw-lora-e2e"
NWK = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
APP = bytes.fromhex("3c4fcf098815f7aba6d2ae2816157e2b")
METER_ADDR, SMOKE_ADDR = 0x26011BDA, 0x26011BDB
CS_EUI = "0004a30b001c0530"
LORA_GATEWAYS = ["aa555a0000000001", "aa555a0000000002"]
METER_VALUES = {"total_volume": 1234.567, "battery": 87, "valve_state": 1, "leak": False,
                "reverse_flow": False, "tamper": False, "water_temperature": 14, "flow": 0.62}


@dataclass
class Site:
    influx: InfluxServer
    db: str
    mosquitto: MosquittoServer
    sim: LorawanSim
    meter: SimEndDevice
    smoke: SimEndDevice
    edge_metrics: EdgeMetrics

    async def query(self, q: str) -> list[dict[str, object]]:
        return await asyncio.to_thread(self.influx.rows, q, self.db)

    def rejected(self, reason: str) -> float:
        return self.edge_metrics.registry.get_sample_value(
            "dciot_edge_frames_rejected_total", {"protocol": "lorawan", "reason": reason}) or 0.0


async def until(check: Callable[[], object], what: str, timeout_s: float = 30.0) -> object:
    """Await `check()` (sync or async) until truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.1)


def _rfc3339(epoch_ms: int) -> str:
    stamp = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _devices() -> list[dict[str, object]]:
    abp = {"nwk_s_key": NWK.hex(), "app_s_key": APP.hex()}
    return [
        {"id": "meter-1", "name": "东昌路1号水表", "profile": "dc-lorawan-watermeter-v1",
         "params": {"dev_addr": f"{METER_ADDR:08X}", **abp}},
        {"id": "smoke-1", "name": "东昌路1号烟感", "profile": "dc-lorawan-smoke-v1",
         "params": {"dev_addr": f"{SMOKE_ADDR:08X}", **abp}},
        {"id": "smoke-cs", "name": "东昌路2号烟感", "profile": "dc-lorawan-smoke-v1",
         "params": {"dev_eui": CS_EUI}},
    ]


@pytest.fixture
async def site(influxd: InfluxServer, influx_db: str, mosquitto: MosquittoServer,
               tmp_path: Path) -> AsyncIterator[Site]:
    udp_port = free_port()
    config = GatewayConfig.model_validate({
        "gateway_id": GATEWAY, "broker": {"host": "127.0.0.1", "port": mosquitto.port},
        "buffer": {"path": str(tmp_path / "buffer.sqlite")},
        "devices": _devices(),
        "listeners": [
            {"kind": "semtech_udp", "port": udp_port, "state_path": str(tmp_path / "fcnt.db")},
            {"kind": "chirpstack_mqtt", "port": mosquitto.port}]})
    cloud_config = CloudConfig.model_validate({
        "broker": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": "ingest-lora"},
        "influx": {"url": influxd.url, "database": influx_db},
        "batch": {"max_delay_ms": 100},
        "devices": [{"id": d["id"], "gateway": GATEWAY, "profile": d["profile"],
                     "name": d["name"], "interval_s": 3600} for d in _devices()]})
    stop_cloud = threading.Event()
    cloud = threading.Thread(target=run_cloud, args=(cloud_config, stop_cloud, CloudMetrics()),
                             daemon=True)
    cloud.start()
    stop_edge, metrics = asyncio.Event(), EdgeMetrics(GATEWAY)
    edge = asyncio.create_task(run_edge(config, load_profiles(), stop_edge, metrics))
    meter = water_meter(METER_ADDR, NWK, APP, **METER_VALUES)
    smoke = smoke_detector(SMOKE_ADDR, NWK, APP)
    try:
        async with LorawanSim("127.0.0.1", udp_port, LORA_GATEWAYS, keepalive_s=1) as sim:
            sim.add_device(meter)
            sim.add_device(smoke)
            await sim.wait_connected(20)
            yield Site(influxd, influx_db, mosquitto, sim, meter, smoke, metrics)
    finally:
        stop_edge.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(edge, 20)
        stop_cloud.set()
        cloud.join(10)


async def test_gateway_uplinks_land_once_and_bad_frames_are_counted_not_written(
        site: Site) -> None:
    first = await site.sim.uplink(site.meter)  # heard by both gateways
    rows = await until(lambda: site.query("SELECT * FROM water WHERE device='meter-1'"),
                       "the meter reading in InfluxDB")
    (row,) = rows  # type: ignore[misc]
    assert {k: row[k] for k in METER_VALUES} == METER_VALUES
    assert row["gateway"] == GATEWAY and row["profile"] == "dc-lorawan-watermeter-v1"
    assert abs(int(row["time"]) - time.time() * 1000) < 60_000  # type: ignore[call-overload]

    # Faults: a bad MIC (both gateways), a replay of the first frame, a frame from a stranger.
    await site.sim.uplink(site.meter, corrupt_mic=True)
    await site.sim.uplink(site.meter)  # second good frame: once it is in, the first is a replay
    await until(lambda: _rows(site, 2), "the second meter reading")
    await site.sim.replay(site.meter, 0)
    await site.sim.uplink_unknown_device()
    await site.sim.send_garbage()
    site.meter.advance(3600)  # an hour of 0.62 m³/h
    site.meter.set(leak=True)
    await site.sim.uplink(site.meter)
    rows = await until(lambda: _rows(site, 3), "three meter readings")
    assert [r["total_volume"] for r in rows] == [1234.567, 1234.567, 1235.187]  # type: ignore[index]
    assert rows[-1]["leak"] is True  # type: ignore[index]
    assert (site.rejected("bad_mic"), site.rejected("replayed_fcnt"),
            site.rejected("unknown_dev_addr"), site.rejected("unknown_identifier")) == (2, 1, 1, 1)
    assert first == site.meter.sent[0]


async def _rows(site: Site, count: int) -> list[dict[str, object]] | None:
    rows = await site.query("SELECT * FROM water WHERE device='meter-1' ORDER BY time")
    assert len(rows) <= count, f"more meter readings than good frames: {rows}"
    return rows if len(rows) == count else None


async def test_smoke_alarm_through_gateways_and_through_chirpstack(site: Site) -> None:
    site.smoke.set(smoke_alarm=True, battery=64, temperature=31)
    await site.sim.uplink(site.smoke)
    profile = load_profiles().get("dc-lorawan-smoke-v1")
    payload = encode_payload(profile, {"fault": True, "battery": 18, "temperature": -7})
    ns_ms = int(time.time() * 1000)
    gw_ms = ns_ms - 250
    event = encode_uplink_event(UplinkEvent(CS_EUI, 41, 3, payload, "5d0c8e2a-cs-1"),
                                _rfc3339(ns_ms), _rfc3339(gw_ms))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fake-chirpstack")
    client.connect("127.0.0.1", site.mosquitto.port)
    client.loop_start()
    topic = f"application/17c82e96/device/{CS_EUI}/event/up"

    async def chirpstack_reading() -> list[dict[str, object]]:
        # The agent subscribes a moment after start; ChirpStack does not retain events, so the
        # event is published again (same deduplicationId: the agent keeps one) until it lands.
        client.publish(topic, event, qos=1)
        return await site.query("SELECT * FROM fire WHERE device='smoke-cs'")

    try:
        (cs_row,) = await until(chirpstack_reading, "the ChirpStack reading")  # type: ignore[misc]
    finally:
        client.disconnect()
        client.loop_stop()
    assert cs_row["time"] == gw_ms  # the gateway's reception time from rxInfo.gwTime
    assert {k: cs_row[k] for k in ("smoke_alarm", "fault", "battery", "temperature")} == {
        "smoke_alarm": False, "fault": True, "battery": 18, "temperature": -7}
    (udp_row,) = await until(lambda: site.query("SELECT * FROM fire WHERE device='smoke-1'"),
                             "the gateway smoke reading")  # type: ignore[misc]
    assert {k: udp_row[k] for k in ("smoke_alarm", "fault", "battery", "temperature")} == {
        "smoke_alarm": True, "fault": False, "battery": 64, "temperature": 31}
