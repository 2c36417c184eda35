"""The chirpstack_mqtt listener on a real mosquitto: ChirpStack-format uplink events published
by a paho client become exact readings; bad events are counted by reason and the stream goes
on. (The full pipeline into InfluxDB is in tests/e2e/test_lorawan.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from dciot.runtime import MosquittoServer
from device_profiles.schema import load_profiles
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.base import Raw
from edge_agent.protocols.chirpstack.codec import UplinkEvent, encode_uplink_event
from edge_agent.protocols.chirpstack.config import ChirpstackMqttConfig
from edge_agent.protocols.chirpstack.listener import ChirpstackDevice, ChirpstackListener
from edge_agent.protocols.semtech_udp.payload import encode_payload

SMOKE_EUI = "0004a30b001c0530"
APP_ID = "17c82e96-be03-4f38-aef3-f83d48582d97"
TOPIC = f"application/{APP_ID}/device/{SMOKE_EUI}/event/up"


@dataclass
class Collected:
    readings: list[tuple[str, dict[str, Raw], int | None]] = field(default_factory=list)

    def sink(self, device: str, raw: dict[str, Raw], ts: int | None) -> None:
        self.readings.append((device, raw, ts))


async def until(predicate: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def publisher(port: int) -> object:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fake-chirpstack")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
async def listening(mosquitto: MosquittoServer) -> AsyncIterator[
        tuple[ChirpstackListener, Collected, EdgeMetrics]]:
    profile = load_profiles().get("dc-lorawan-smoke-v1")
    settings = ChirpstackMqttConfig(kind="chirpstack_mqtt", port=mosquitto.port)
    metrics, collected = EdgeMetrics("gw-test"), Collected()
    listener = ChirpstackListener(settings, [ChirpstackDevice("smoke-1", SMOKE_EUI, profile)],
                                  metrics)
    task = asyncio.create_task(listener.run(collected.sink))
    await asyncio.wait_for(listener.subscribed.wait(), 10)
    try:
        yield listener, collected, metrics
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_events_become_readings_and_bad_ones_are_counted(
        mosquitto: MosquittoServer,
        listening: tuple[ChirpstackListener, Collected, EdgeMetrics]) -> None:
    _listener, collected, metrics = listening
    profile = load_profiles().get("dc-lorawan-smoke-v1")
    payload = encode_payload(profile, {"smoke_alarm": True, "battery": 77, "temperature": -4})
    good = UplinkEvent(SMOKE_EUI, 12, 3, payload, "dedup-1", None)
    with publisher(mosquitto.port) as client:
        client.publish(TOPIC, encode_uplink_event(good, "2024-05-01T08:00:01.5Z",
                                                  "2024-05-01T08:00:01.25Z"), qos=1)
        client.publish(TOPIC, encode_uplink_event(good), qos=1)  # redelivered: same id
        client.publish(TOPIC, b"{broken", qos=1)
        client.publish(TOPIC.replace(SMOKE_EUI, "ffffffffffffffff"), encode_uplink_event(
            UplinkEvent("ffffffffffffffff", 1, 3, payload, "dedup-2")), qos=1)
        client.publish(TOPIC, encode_uplink_event(UplinkEvent(SMOKE_EUI, 13, 9, payload,
                                                              "dedup-3")), qos=1)
        client.publish(TOPIC, encode_uplink_event(UplinkEvent(SMOKE_EUI, 14, 3, payload[:2],
                                                              "dedup-4")), qos=1)
        client.publish(TOPIC, json.dumps({"deviceInfo": {"devEui": SMOKE_EUI},
                                          "deduplicationId": "dedup-5"}), qos=1)  # FPort 0
        later = encode_payload(profile, {"battery": 76, "temperature": 20})
        client.publish(TOPIC, encode_uplink_event(UplinkEvent(SMOKE_EUI, 15, 3, later,
                                                              "dedup-6")), qos=1)
        await until(lambda: len(collected.readings) == 2, "two readings")

    def rejected(reason: str) -> float:
        return metrics.registry.get_sample_value(
            "dciot_edge_frames_rejected_total",
            {"protocol": "chirpstack", "reason": reason}) or 0.0

    first, second = collected.readings
    assert first == ("smoke-1", {"smoke_alarm": True, "fault": False, "tamper": False,
                                 "self_test": False, "battery": 77, "temperature": -4},
                     1714550401250)  # the gateway's time
    assert second[0] == "smoke-1" and second[1]["battery"] == 76 and second[2] is None
    assert {r: rejected(r) for r in ("duplicate", "bad_json", "unknown_dev_eui",
                                     "unexpected_fport", "payload_length")} == {
        "duplicate": 1, "bad_json": 1, "unknown_dev_eui": 1, "unexpected_fport": 1,
        "payload_length": 1}
