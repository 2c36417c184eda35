"""End to end on real processes: simulator -> edge agent -> mosquitto -> ingest -> influxd.

The simulators run with physics off and known register contents, so the exact scaled values
that must land are known; faults are injected through the simulators' control API.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from cloud_broker.app import run_cloud
from cloud_broker.config import CloudConfig
from cloud_broker.events.service import EventCentre, EventCentreConfig
from cloud_broker.metrics import CloudMetrics
from dciot.cli.main import app
from dciot.demo.monitor import scrape
from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import InfluxServer, MosquittoServer, free_port
from edge_agent.uplink import contract
from firmware_sims.control import send_fault

GATEWAY = "gw-e2e"
SITE = "东昌路 A段,北侧=1"  # space, comma, equals and Chinese in a tag value
POLE_VALUES = {
    "lamp_on": True, "dimming": 80, "voltage": 221.3, "current": 0.523, "active_power": 115.7,
    "energy": 12345.67, "pm25": 35, "pm10": 58, "temperature": -3.5, "humidity": 45.2,
    "noise": 52.3, "tilt": 0.37, "emergency_button": False,
}
PUMP_VALUES = {
    "pump1_running": True, "pump2_running": False, "pump1_current": 43.2, "pump2_current": 0.0,
    "pump1_frequency": 49.98, "pump2_frequency": 0.0, "sump_level": 2.75,
    "outlet_pressure": 0.325, "flow": 351.5, "total_volume": 123456.7, "fault_code": 0,
    "pump1_fault": False, "pump2_fault": True,
}


@dataclass
class Recorder:
    """An MQTT subscriber that keeps every message it gets, by topic."""

    messages: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload) if msg.payload else {}  # empty: a removed retained msg
        with self.lock:
            self.messages.append((msg.topic, body))

    def matching(self, predicate: Callable[[str, dict[str, object]], bool]) -> list[
            dict[str, object]]:
        with self.lock:
            return [body for topic, body in self.messages if predicate(topic, body)]


@dataclass
class Pipeline:
    mosquitto: MosquittoServer
    influx: InfluxServer
    db: str
    metrics: CloudMetrics
    control_url: str
    pole_port: int
    pump_port: int
    edge_metrics_url: str
    recorder: Recorder
    client: mqtt.Client
    centre_url: str

    def events(self) -> list[dict[str, object]]:
        with urllib.request.urlopen(f"{self.centre_url}/api/v1/events") as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def query(self, q: str) -> list[dict[str, object]]:
        return self.influx.rows(q, db=self.db)

    def count(self, measurement: str, device: str, since_ms: int = 0) -> int:
        rows = self.query(f"SELECT count(*) FROM {measurement} WHERE device='{device}' "
                          f"AND time >= {since_ms}ms")
        return max((int(v) for k, v in rows[0].items() if k != "time"), default=0) if rows else 0

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def _write_yaml(path: Path, document: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pipeline(influxd: InfluxServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("e2e")
    db = "e2e"
    influxd.create_database(db)
    broker = MosquittoServer(tmp / "mosquitto")
    broker.start()
    pole_port, pump_port, control_port, edge_metrics = (free_port() for _ in range(4))
    sims = _write_yaml(tmp / "sims.yaml", {
        "physics": False,
        "control": {"host": "127.0.0.1", "port": control_port},
        "servers": [
            {"host": "127.0.0.1", "port": pole_port, "units": [
                {"unit": 1, "profile": "dc-smartpole-v1", "initial": POLE_VALUES},
                {"unit": 2, "profile": "dc-smartpole-v1", "initial": POLE_VALUES}]},
            {"host": "127.0.0.1", "port": pump_port, "units": [
                {"unit": 1, "profile": "dc-pumpstation-v1", "initial": PUMP_VALUES}]},
        ]})
    devices = [("pole-001", "dc-smartpole-v1", pole_port, 1, "东昌路1号灯杆"),
               ("pole-002", "dc-smartpole-v1", pole_port, 2, "东昌路2号灯杆"),
               ("ps-01", "dc-pumpstation-v1", pump_port, 1, "1号扬水站")]
    edge = _write_yaml(tmp / "edge.yaml", {
        "gateway_id": GATEWAY, "site": SITE,
        "broker": {"host": "127.0.0.1", "port": broker.port},
        "metrics": {"host": "127.0.0.1", "port": edge_metrics},
        "devices": [{"id": d, "name": n, "profile": p, "host": "127.0.0.1", "port": port,
                     "unit": u, "interval_s": 0.5} for d, p, port, u, n in devices]})
    centre = EventCentre(EventCentreConfig(port=free_port(), db_path=tmp / "events.sqlite",
                                           broker=None))
    centre.start()
    cloud_config = CloudConfig.model_validate({
        "rules": {"state_path": str(tmp / "alarms.sqlite"), "event_centre_url": centre.url,
                  "outbox_path": str(tmp / "outbox.sqlite")},
        "broker": {"host": "127.0.0.1", "port": broker.port, "client_id": "ingest-e2e"},
        "influx": {"url": influxd.url, "database": db},
        "batch": {"max_delay_ms": 100},
        "devices": [{"id": d, "gateway": GATEWAY, "profile": p, "name": n, "site": SITE,
                     "interval_s": 0.5} for d, p, _port, _u, n in devices]})
    recorder = Recorder()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-observer",
                         protocol=mqtt.MQTTv5)
    client.on_message = recorder.on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe([("dc/v1/#", 1)])
    client.loop_start()
    metrics = CloudMetrics()
    stop = threading.Event()
    cloud = threading.Thread(target=run_cloud, args=(cloud_config, stop, metrics), daemon=True)
    sim_proc = DciotProcess("sims", ["sim", "run", str(sims)], tmp / "sims.log")
    edge_proc = DciotProcess("edge", ["edge", "run", str(edge)], tmp / "edge.log")
    try:
        cloud.start()
        sim_proc.start()
        for port in (pole_port, pump_port, control_port):
            wait_for_port("127.0.0.1", port, 30, sim_proc)
        edge_proc.start()
        wait_for_port("127.0.0.1", edge_metrics, 30, edge_proc)
        yield Pipeline(broker, influxd, db, metrics, f"http://127.0.0.1:{control_port}",
                       pole_port, pump_port, f"http://127.0.0.1:{edge_metrics}/metrics",
                       recorder, client, centre.url)
    finally:
        edge_code = edge_proc.stop()
        sim_proc.stop()
        stop.set()
        cloud.join(10)
        client.loop_stop()
        broker.stop()
        centre.stop()
    assert edge_code == 0, f"edge agent did not stop cleanly:\n{edge_proc.tail()}"


def _first_reading(p: Pipeline, device: str, poll: Callable[..., object]) -> dict[str, object]:
    topic = contract.readings_topic(GATEWAY, device)
    found = poll(lambda: p.recorder.matching(lambda t, _b: t == topic), 30,
                 what=f"a reading of {device} on MQTT")
    return found[0]  # type: ignore[index]


@pytest.mark.parametrize(("device", "measurement", "profile", "expected"), [
    ("pole-001", "smart_pole", "dc-smartpole-v1", POLE_VALUES),
    ("ps-01", "pump_station", "dc-pumpstation-v1", PUMP_VALUES),
])
def test_exact_scaled_values_land_with_tags_and_read_time(
        pipeline: Pipeline, poll: Callable[..., object], device: str, measurement: str,
        profile: str, expected: dict[str, object]) -> None:
    message = _first_reading(pipeline, device, poll)
    (reading,) = message["readings"]  # type: ignore[misc]
    ts = reading["ts"]
    assert abs(ts - time.time() * 1000) < 60_000
    rows = poll(lambda: pipeline.query(f"SELECT * FROM {measurement} WHERE device='{device}' "
                                       f"AND time = {ts}ms"), 20, what="the point in InfluxDB")
    (row,) = rows  # type: ignore[misc]
    assert row["time"] == ts
    assert row["gateway"] == GATEWAY and row["profile"] == profile and row["site"] == SITE
    landed = {k: row[k] for k in expected}
    assert landed == expected
    kinds = {bool: "boolean", int: "integer", float: "float"}
    field_types = {name: kind for name, kind in (
        (r["fieldKey"], r["fieldType"]) for r in pipeline.query(
            f"SHOW FIELD KEYS FROM {measurement}"))}
    assert {k: field_types[k] for k in expected} == {k: kinds[type(v)]
                                                     for k, v in expected.items()}


def test_high_level_raises_one_alarm_and_clears_once(pipeline: Pipeline,
                                                     poll: Callable[..., object]) -> None:
    def alarms(state: str) -> list[dict[str, object]]:
        return pipeline.recorder.matching(
            lambda t, b: t == "dc/v1/alarms/events/critical/pump_station/ps-01/sump_level_high"
            and b["state"] == state)

    send_fault(pipeline.control_url, port=pipeline.pump_port, unit=1, action="force",
               point="sump_level", value=4.9)
    (raised,) = poll(lambda: alarms("raised"), 20, what="the alarm")  # type: ignore[misc]
    assert raised["title_zh"] == "1号扬水站集水池水位超高：4.90 m（限值 4.50 m）"
    assert raised["severity"] == "critical" and raised["value"] == 4.9
    assert raised["threshold"] == 4.5 and raised["device"] == "ps-01"
    # Between the levels nothing changes: still one alarm after several more readings.
    send_fault(pipeline.control_url, port=pipeline.pump_port, unit=1, action="force",
               point="sump_level", value=4.4)
    after = int(raised["ts"]) + 1  # type: ignore[call-overload]
    poll(lambda: pipeline.count("pump_station", "ps-01", after) >= 4, 20,
         what="more pump readings")
    assert len(alarms("raised")) == 1 and alarms("cleared") == []
    # A consumer that connects late sees the active alarm (retained); an operator acks it.
    late = _retained_active(pipeline, poll)
    assert late["alarm_id"] == raised["alarm_id"] and late["state"] == "raised"
    result = CliRunner().invoke(app, ["alarms", "ack", str(raised["alarm_id"]), "--by", "值班员",
                                      "--port", str(pipeline.mosquitto.port)])
    assert result.exit_code == 0, result.output
    (acked,) = poll(lambda: alarms("acknowledged"), 20, what="the ack")  # type: ignore[misc]
    assert acked["acked_by"] == "值班员" and acked["alarm_id"] == raised["alarm_id"]
    assert _retained_active(pipeline, poll)["acked_by"] == "值班员"
    unknown = CliRunner().invoke(app, ["alarms", "ack", "no-such-id", "--by", "x", "--port",
                                       str(pipeline.mosquitto.port)])
    assert unknown.exit_code == 1 and "no active alarm" in unknown.output
    send_fault(pipeline.control_url, port=pipeline.pump_port, unit=1, action="force",
               point="sump_level", value=4.0)
    (cleared,) = poll(lambda: alarms("cleared"), 20, what="the clear")  # type: ignore[misc]
    assert cleared["acked_by"] == "值班员"
    assert cleared["alarm_id"] == raised["alarm_id"] and cleared["value"] == 4.0
    after = int(cleared["ts"]) + 1  # type: ignore[call-overload]
    poll(lambda: pipeline.count("pump_station", "ps-01", after) >= 4, 20,
         what="more pump readings")
    assert len(alarms("raised")) == 1 and len(alarms("cleared")) == 1
    rows = pipeline.query("SELECT * FROM alarms WHERE rule='sump_level_high'")
    assert sorted(r["state"] for r in rows) == ["acknowledged", "cleared", "raised"]
    assert _retained_active(pipeline, poll, expect=False) == {}
    # The occurrence became exactly one event in the centre, for drainage, and it records the
    # clear (delivered through the durable outbox).
    def sump_events() -> list[dict[str, object]]:
        return [e for e in pipeline.events() if e["alarm_id"] == raised["alarm_id"]]

    poll(lambda: sump_events() and sump_events()[0]["alarm_cleared_ts"], 20,
         what="the event with its clear")
    (event,) = sump_events()
    assert event["department"] == "drainage" and event["status"] == "reported"
    assert event["title_zh"] == raised["title_zh"]
    assert event["alarm_cleared_ts"] == cleared["ts"]
    send_fault(pipeline.control_url, port=pipeline.pump_port, unit=1, action="release",
               point="sump_level")


SUMP_ACTIVE = contract.alarm_active_topic("critical", "pump_station", "ps-01", "sump_level_high")


def _retained_active(pipeline: Pipeline, poll: Callable[..., object],
                     expect: bool = True) -> dict[str, object]:
    """What a consumer connecting now gets retained for the sump alarm ({} if nothing)."""
    got: list[dict[str, object]] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: got.append(json.loads(m.payload)) if m.payload else None
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", pipeline.mosquitto.port)
    client.loop_start()
    try:
        client.subscribe(SUMP_ACTIVE, qos=1)
        poll(subscribed.is_set, 10, what="subscription")
        if expect:
            poll(lambda: got, 10, what="the retained active alarm")
        else:  # nothing retained: retained messages would arrive before this marker
            client.publish(SUMP_ACTIVE, b"{}", qos=1)
            poll(lambda: got, 10, what="the marker")
            return got[0]
        return got[-1]
    finally:
        client.disconnect()
        client.loop_stop()


def test_reading_for_unknown_device_is_rejected_and_counted(pipeline: Pipeline,
                                                            poll: Callable[..., object]) -> None:
    before = pipeline.sample("dciot_ingest_rejected_total", reason="unknown_device")
    started = int(time.time() * 1000)
    payload = contract.encode_readings(GATEWAY, "ghost-01", "dc-smartpole-v1",
                                       [contract.Reading(started, {"pm25": 10})])
    pipeline.client.publish(contract.readings_topic(GATEWAY, "ghost-01"), payload, qos=1)
    poll(lambda: pipeline.sample("dciot_ingest_rejected_total", reason="unknown_device")
         == before + 1, 20, what="the rejection to be counted")
    assert pipeline.query("SELECT * FROM smart_pole WHERE device='ghost-01'") == []
    poll(lambda: pipeline.count("smart_pole", "pole-001", started) >= 2, 20,
         what="valid readings to keep landing")


def test_unreachable_device_is_reported_while_others_land(pipeline: Pipeline,
                                                          poll: Callable[..., object]) -> None:
    status_topic = contract.device_status_topic(GATEWAY, "pole-002")

    def statuses(state: str) -> list[dict[str, object]]:
        return pipeline.recorder.matching(lambda t, b: t == status_topic and b["state"] == state)

    send_fault(pipeline.control_url, port=pipeline.pole_port, unit=2, action="mute")
    muted_at = int(time.time() * 1000)
    (down,) = poll(lambda: statuses("unreachable"), 30, what="unreachable status")  # type: ignore[misc]
    assert "timeout" in str(down["reason"])
    poll(lambda: pipeline.sample("dciot_devices_unreachable", domain="smart_pole") == 1, 10,
         what="the cloud to count the unreachable device")
    edge = scrape(pipeline.edge_metrics_url)
    assert edge["dciot_edge_polls_total{device=pole-002,result=timeout}"] >= 3
    poll(lambda: pipeline.count("smart_pole", "pole-001", muted_at) >= 3
         and pipeline.count("pump_station", "ps-01", muted_at) >= 3, 20,
         what="the other devices to keep landing")
    send_fault(pipeline.control_url, port=pipeline.pole_port, unit=2, action="unmute")
    poll(lambda: statuses("online"), 30, what="the device to be reported online again")
    poll(lambda: pipeline.sample("dciot_devices_unreachable", domain="smart_pole") == 0, 10,
         what="the cloud to see it back")


def test_status_command_reads_the_services(pipeline: Pipeline) -> None:
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    result = CliRunner().invoke(app, ["status", "--json", "--url", pipeline.edge_metrics_url,
                                      "--url", dead])
    assert result.exit_code == 1  # one service is down
    edge, down = json.loads(result.output)
    assert edge["up"] is True and edge["published"] > 0 and edge["buffered"] >= 0
    assert down["up"] is False
