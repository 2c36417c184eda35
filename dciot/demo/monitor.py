"""What the demo shows: alarms seen over MQTT (as any alarm consumer sees them) and the cloud's
counters scraped from its Prometheus endpoint."""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.uplink import contract


@dataclass
class AlarmLog:
    raised: int = 0
    cleared: int = 0
    active: dict[str, dict[str, object]] = field(default_factory=dict)
    history: list[dict[str, object]] = field(default_factory=list)


class AlarmSubscriber:
    """Subscribes to every alarm, keeps the active ones and counts raised/cleared."""

    def __init__(self, host: str, port: int, tls: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.log = AlarmLog()
        self.lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self.subscribed = threading.Event()

    def start(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dciot-demo-alarm-view",
                             protocol=mqtt.MQTTv5)
        client.on_connect = lambda c, *_: c.subscribe(contract.ALARM_EVENTS_SUBSCRIPTION, qos=1)
        client.on_subscribe = lambda *_: self.subscribed.set()
        client.on_message = self._on_message
        if self.tls:
            client.tls_set(ca_certs=self.tls["cafile"], certfile=self.tls["certfile"],
                           keyfile=self.tls["keyfile"])
        client.connect(self.host, self.port)
        client.loop_start()
        self._client = client

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            event = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            self.log.history.append(event)
            if event.get("state") == "raised":
                self.log.raised += 1
                self.log.active[str(event["alarm_id"])] = event
            elif event.get("state") == "cleared":
                self.log.cleared += 1
                self.log.active.pop(str(event["alarm_id"]), None)

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()


def scrape(url: str, timeout_s: float = 2.0) -> dict[str, float]:
    """Prometheus text -> {"name{label=value,...}": value} (names without _total suffix kept)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def total(samples: dict[str, float], name: str) -> float:
    """Sum of a metric over all its label sets."""
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))
