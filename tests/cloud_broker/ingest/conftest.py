"""A running cloud ingest (run_cloud in a thread) on real mosquitto and influxd, plus an MQTT
client that plays the gateways. `start_cloud(devices, **config)` starts one; stopped at the end."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_broker.app import run_cloud
from cloud_broker.config import CloudConfig
from cloud_broker.metrics import CloudMetrics
from dciot.runtime import InfluxServer, MosquittoServer
from edge_agent.uplink import contract


@dataclass
class Cloud:
    influx: InfluxServer
    db: str
    metrics: CloudMetrics
    client: mqtt.Client

    def publish(self, topic: str, body: dict[str, Any] | bytes, retain: bool = False) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def readings(self, gateway: str, device: str, readings: list[tuple[int, dict[str, Any]]],
                 profile: str = "dc-smartpole-v1") -> None:
        self.publish(contract.readings_topic(gateway, device), {
            "schema": contract.READING_SCHEMA, "gateway": gateway, "device": device,
            "profile": profile, "readings": [{"ts": ts, "values": v} for ts, v in readings]})

    def rows(self, q: str) -> list[dict[str, Any]]:
        return self.influx.rows(q, db=self.db)

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def start_cloud(influxd: InfluxServer, influx_db: str, mosquitto: MosquittoServer
                ) -> Iterator[Callable[..., Cloud]]:
    stops: list[tuple[threading.Event, threading.Thread, mqtt.Client]] = []

    def start(devices: list[dict[str, Any]], gateways: tuple[str, ...] = ("gw-a",),
              **config: Any) -> Cloud:
        cloud_config = CloudConfig.model_validate({
            "broker": {"port": mosquitto.port, "client_id": f"ingest-{influx_db}"},
            "influx": {"url": influxd.url, "database": influx_db},
            "batch": {"max_delay_ms": 50}, "devices": devices, **config})
        metrics, stop = CloudMetrics(), threading.Event()
        thread = threading.Thread(target=run_cloud, args=(cloud_config, stop, metrics),
                                  daemon=True)
        thread.start()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        stops.append((stop, thread, client))
        cloud = Cloud(influxd, influx_db, metrics, client)
        for gateway in gateways:  # retained births: once counted, the ingest is subscribed
            cloud.publish(contract.gateway_status_topic(gateway), json.loads(
                contract.encode_gateway_status(gateway, "online", _now_ms())), retain=True)
        deadline = time.monotonic() + 30
        while cloud.sample("dciot_gateways_online") < len(gateways):
            assert time.monotonic() < deadline, "the ingest did not come up"
            time.sleep(0.05)
        return cloud

    yield start
    for stop, thread, client in stops:
        client.loop_stop()
        client.disconnect()
        stop.set()
        thread.join(10)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def now_ms() -> Callable[[], int]:
    return _now_ms
