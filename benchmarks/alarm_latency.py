"""Alarm latency: a triggering reading published to the broker -> the alarm on MQTT.

Starts its own mosquitto and influxd on free loopback ports and runs `dciot cloud run` as its
own process. A background publisher sends ordinary readings of many devices at --rate
readings/s; meanwhile one pump station's sump level alternates above the raise level and below
the clear level, each alternation a new alarm transition (raised, cleared, raised, ...). For
each trigger the time from just before its publish to the arrival of its transition on
`dc/v1/alarms/events/#` is recorded, and for each raise the time to its event's `received_ts`
in the event centre (delivered through the rule engine's durable outbox); p50 and p99 are
printed as JSON.

    .venv/bin/python benchmarks/alarm_latency.py --rate 1000 --triggers 200

Bounded: --triggers transitions, --timeout seconds; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import pump_values
from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import InfluxServer, MosquittoServer, free_port
from edge_agent.uplink import contract

GATEWAY = "gw-bench"
TRIGGER = "ps-trigger"


def _client(port: int, name: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    sock = client.socket()
    if isinstance(sock, socket.socket):  # as a gateway would: small messages leave at once
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    return client


def _background(port: int, devices: int, rate: float, stop: threading.Event,
                sent: list[int]) -> None:
    """Ordinary readings at `rate` per second (paced in 10 ms slices) until `stop`."""
    client = _client(port, "bench-background")
    i = 0
    next_at = time.monotonic()
    while not stop.is_set():
        for _ in range(max(1, int(rate / 100))):
            device = f"ps-{i % devices:05d}"
            body = contract.encode_readings(GATEWAY, device, "dc-pumpstation-v1", [
                contract.Reading(time.time_ns() // 1_000_000, pump_values(i))])
            client.publish(contract.readings_topic(GATEWAY, device), body, qos=1)
            i += 1
        next_at += 0.01
        time.sleep(max(0.0, next_at - time.monotonic()))
    sent.append(i)
    client.loop_stop()


def run(rate: float, devices: int, triggers: int, timeout_s: float,
        workdir: Path) -> dict[str, object]:
    mosq, influx = MosquittoServer(workdir / "mosquitto"), InfluxServer(workdir / "influxdb")
    mosq.start()
    influx.start()
    centre_port = free_port()
    centre_url = f"http://127.0.0.1:{centre_port}"
    (workdir / "centre.yaml").write_text(yaml.safe_dump(
        {"port": centre_port, "db_path": str(workdir / "events.sqlite"), "broker": None}))
    centre = DciotProcess("centre", ["events", "serve", str(workdir / "centre.yaml"),
                                     "--log-level", "warning"], workdir / "centre.log")
    centre.start()
    wait_for_port("127.0.0.1", centre_port, 30, centre)
    metrics_port = free_port()
    config = {
        "broker": {"host": "127.0.0.1", "port": mosq.port, "client_id": "ingest-latency"},
        "influx": {"url": influx.url, "database": "latency"},
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "rules": {"state_path": str(workdir / "alarms.sqlite"),
                  "outbox_path": str(workdir / "outbox.sqlite"), "event_centre_url": centre_url},
        "devices": [{"id": f"ps-{d:05d}", "gateway": GATEWAY, "profile": "dc-pumpstation-v1"}
                    for d in range(devices)]
        + [{"id": TRIGGER, "gateway": GATEWAY, "profile": "dc-pumpstation-v1"}],
    }
    (workdir / "cloud.yaml").write_text(yaml.safe_dump(config))
    ingest = DciotProcess("ingest", ["cloud", "run", str(workdir / "cloud.yaml"), "--log-level",
                                     "warning"], workdir / "ingest.log")
    ingest.start()
    arrivals: dict[str, float] = {}
    got = threading.Condition()

    def on_alarm(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        event = json.loads(msg.payload)
        if event["device"] == TRIGGER and event["rule"] == "sump_level_high":
            with got:
                arrivals[f"{event['state']}:{event['ts']}"] = time.perf_counter()
                got.notify_all()

    stop = threading.Event()
    sent: list[int] = []
    try:
        wait_for_port("127.0.0.1", metrics_port, 30, ingest)
        watcher = _client(mosq.port, "bench-alarm-watcher")
        watcher.on_message = on_alarm
        watcher.subscribe(contract.ALARM_EVENTS_SUBSCRIPTION, qos=1)
        trigger = _client(mosq.port, "bench-trigger")
        background = threading.Thread(target=_background,
                                      args=(mosq.port, devices, rate, stop, sent))
        background.start()
        time.sleep(2.0)  # let the background load reach its rate before measuring
        latencies: list[float] = []
        published_ms: dict[str, int] = {}  # raise trigger ts -> wall clock just before publish
        deadline = time.monotonic() + timeout_s
        for n in range(triggers):
            if time.monotonic() > deadline:
                break
            state, level = ("raised", 4.8) if n % 2 == 0 else ("cleared", 4.0)
            ts = time.time_ns() // 1_000_000
            body = contract.encode_readings(GATEWAY, TRIGGER, "dc-pumpstation-v1", [
                contract.Reading(ts, {**pump_values(n), "sump_level": level})])
            if state == "raised":
                published_ms[str(ts)] = time.time_ns() // 1_000_000
            started = time.perf_counter()
            trigger.publish(contract.readings_topic(GATEWAY, TRIGGER), body, qos=1)
            key = f"{state}:{ts}"
            with got:
                got.wait_for(lambda k=key: k in arrivals, timeout=5.0)
            if key in arrivals:
                latencies.append((arrivals[key] - started) * 1000)
            time.sleep(0.02)  # space the triggers (the load, not a condition)
        stop.set()
        background.join(10)
        to_event = _event_latencies(centre_url, published_ms, timeout_s=30)
        arr = np.array(latencies)
        return {
            "background_rate_per_s": rate, "devices": devices, "triggers": triggers,
            "alarms_seen": len(latencies), "missed": triggers - len(latencies),
            "to_mqtt_ms": {"p50": round(float(np.percentile(arr, 50)), 2),
                           "p99": round(float(np.percentile(arr, 99)), 2),
                           "max": round(float(arr.max()), 2)} if len(arr) else None,
            "to_event_centre_ms": _percentiles(to_event),
            "events_created": len(to_event),
            "background_sent": sent[0] if sent else 0,
        }
    finally:
        stop.set()
        ingest.stop()
        mosq.stop()
        influx.stop()
        centre.stop()


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    arr = np.array(values)
    return {"p50": round(float(np.percentile(arr, 50)), 2),
            "p99": round(float(np.percentile(arr, 99)), 2), "max": round(float(arr.max()), 2)}


def _event_latencies(url: str, published_ms: dict[str, int], timeout_s: float) -> list[float]:
    """received_ts of each trigger's event minus its publish time (same clock), once all the
    events are in (or the deadline passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(f"{url}/api/v1/events?limit=1000") as response:
            events = [e for e in json.loads(response.read()) if e["device"] == TRIGGER]
        if len(events) >= len(published_ms) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return [float(e["received_ts"] - published_ms[str(e["reported_ts"])]) for e in events
            if str(e["reported_ts"]) in published_ms]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dciot-latency-") as tmp:
        result = run(args.rate, args.devices, args.triggers, args.timeout, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
