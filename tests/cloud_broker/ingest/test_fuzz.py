"""Fuzzing the ingest on real mosquitto and influxd: hypothesis-made bad messages interleaved
with valid readings. Every bad one is rejected and counted; every valid one lands."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from cloud_broker.app import run_cloud
from cloud_broker.config import CloudConfig
from cloud_broker.metrics import CloudMetrics
from dciot.runtime import InfluxServer, MosquittoServer
from device_profiles.schema import load_profiles
from edge_agent.uplink.contract import (
    Reading,
    encode_gateway_status,
    encode_readings,
    gateway_status_topic,
    readings_topic,
)

GW = "gw-fuzz"
POINTS = {p.name for p in load_profiles().get("dc-smartpole-v1").points}
_ts = itertools.count(int(time.time() * 1000) - 10_000_000)


@dataclass
class Rig:
    client: mqtt.Client
    metrics: CloudMetrics
    influx: InfluxServer
    db: str
    valid_sent: int = 0
    fuzz_sent: int = 0

    def rejected(self) -> float:
        return sum(s.value for f in self.metrics.registry.collect() for s in f.samples
                   if s.name == "dciot_ingest_rejected_total")

    def landed(self, device: str) -> int:
        result = self.influx.query(f"SELECT count(pm25) FROM smart_pole WHERE device='{device}'",
                                   db=self.db)
        series = result["results"][0].get("series", [])
        return int(series[0]["values"][0][1]) if series else 0


@pytest.fixture(scope="module")
def rig(influxd: InfluxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    broker = MosquittoServer(tmp_path_factory.mktemp("fuzz") / "mosquitto")
    broker.start()
    db = "fuzz"
    influxd.create_database(db)
    config = CloudConfig.model_validate({
        "broker": {"port": broker.port, "client_id": "ingest-fuzz"},
        "influx": {"url": influxd.url, "database": db}, "batch": {"max_delay_ms": 50},
        "max_payload_bytes": 4096,
        "devices": [{"id": d, "gateway": GW, "profile": "dc-smartpole-v1"}
                    for d in ("pole-001", "pole-002")]})
    metrics, stop = CloudMetrics(), threading.Event()
    ingest = threading.Thread(target=run_cloud, args=(config, stop, metrics), daemon=True)
    ingest.start()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    # A retained birth: once the ingest counts it online, it is subscribed (and, the session
    # being persistent, gets everything published from then on).
    client.publish(gateway_status_topic(GW), encode_gateway_status(GW, "online", next(_ts)),
                   qos=1, retain=True).wait_for_publish(10)
    deadline = time.monotonic() + 30
    while not metrics.registry.get_sample_value("dciot_gateways_online"):
        assert time.monotonic() < deadline, "the ingest did not subscribe"
        time.sleep(0.05)
    try:
        yield Rig(client, metrics, influxd, db)
    finally:
        client.loop_stop()
        stop.set()
        ingest.join(10)
        broker.stop()


def _valid(device: str) -> dict[str, object]:
    return json.loads(encode_readings(GW, device, "dc-smartpole-v1",
                                      [Reading(next(_ts), {"pm25": 12, "voltage": 220.5})]))


json_leaf = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20))
any_json = st.recursive(json_leaf, lambda c: st.lists(c, max_size=4)
                        | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12)
bad_value = (st.none() | st.text(max_size=10) | st.lists(json_leaf, max_size=2)
             | st.sampled_from([float("nan"), float("inf"), float("-inf")]))
unknown_name = st.text(min_size=1, max_size=12).filter(lambda n: n not in POINTS)


def _mutate(kind: str, value: object, name: str) -> bytes:
    body = _valid("pole-002")
    reading = body["readings"][0]  # type: ignore[index]
    if kind == "bad_value":
        reading["values"]["voltage"] = value
    elif kind == "bool_as_number":
        reading["values"]["lamp_on"] = 1
    elif kind == "unknown_point":
        reading["values"][name] = 1.0
    elif kind == "unknown_top_field":
        body[name + "_x"] = value
    elif kind == "bad_ts":
        reading["ts"] = value if not isinstance(value, int) or isinstance(value, bool) else "x"
    elif kind == "schema":
        body["schema"] = "dc.reading/0"
    elif kind == "too_large":
        reading["values"]["voltage"] = "x" * 5000
    elif kind == "long_device":
        body["device"] = "d" * 300
    raw = json.dumps(body, allow_nan=True).encode()
    return raw if kind != "not_utf8" else raw[:10] + b"\xff\xfe" + raw[10:]


MUTATIONS = ["bad_value", "bool_as_number", "unknown_point", "unknown_top_field", "bad_ts",
             "schema", "too_large", "long_device", "not_utf8"]
good_topic = readings_topic(GW, "pole-002")
fuzz_message = st.one_of(
    st.tuples(st.just(good_topic), st.binary(max_size=200)),
    st.tuples(st.just(good_topic), any_json.map(lambda v: json.dumps(v).encode())),
    st.tuples(st.just(good_topic), st.builds(_mutate, st.sampled_from(MUTATIONS), bad_value,
                                             unknown_name)),
    st.tuples(st.sampled_from([readings_topic(GW, "ghost-1"), f"dc/v1/gw/{GW}/readings/a b",
                               f"dc/v1/gw/{GW}/readings/" + "x" * 80, "dc/v1/gw/g w/readings/d"]),
              st.just(json.dumps(_valid("pole-002")).encode())),
)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(fuzz_message, min_size=5, max_size=25))
def test_bad_messages_are_rejected_and_valid_ones_all_land(
        rig: Rig, messages: list[tuple[str, bytes]]) -> None:
    for topic, payload in messages:
        rig.client.publish(topic, payload, qos=1).wait_for_publish(10)
        rig.fuzz_sent += 1
        rig.client.publish(readings_topic(GW, "pole-001"),
                           json.dumps(_valid("pole-001")).encode(), qos=1).wait_for_publish(10)
        rig.valid_sent += 1
    # Exact accounting so far (cumulative over examples): every valid reading landed, every
    # bad message was rejected and counted, nothing of the bad stream was written.
    deadline = time.monotonic() + 30
    while not (rig.landed("pole-001") == rig.valid_sent and rig.rejected() == rig.fuzz_sent):
        assert time.monotonic() < deadline, (
            f"landed {rig.landed('pole-001')}/{rig.valid_sent}, "
            f"rejected {rig.rejected()}/{rig.fuzz_sent}")
        time.sleep(0.05)
    assert rig.landed("pole-002") == 0
