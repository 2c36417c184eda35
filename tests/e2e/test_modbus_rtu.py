"""End to end: fire devices on a simulated RS-485 bus (pseudo-terminal) -> edge agent (a real
`dciot edge run` process opening the tty with pyserial, Modbus RTU) -> mosquitto -> ingest ->
influxd.

The simulator (firmware_sims/rtu_bus.py) runs on its own event loop in a thread of this test
process, paces its answers at 9600 baud and holds fixed values, so the exact values that must
land are known; faults are injected into it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from cloud_broker.app import run_cloud
from cloud_broker.config import CloudConfig
from cloud_broker.metrics import CloudMetrics
from dciot.demo.monitor import scrape
from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import InfluxServer, MosquittoServer, free_port
from device_profiles.schema import load_profiles
from edge_agent.protocols.modbus.bus_budget import SerialLine
from edge_agent.uplink import contract
from firmware_sims.rtu_bus import BusSimThread, RtuBusSim, model_for

GATEWAY = "gw-rtu"
# A pty takes no parity (Linux refuses PARENB on it): 8N2 has the 11-bit character of 8E1.
LINE = SerialLine(9600, "N", 2)
DEVICES = {  # device id -> (unit, profile, name, values the simulator holds)
    "efm-01": (1, "dc-elecfire-v1", "配电室1号电气火灾探测器", {
        "residual_current": 128, "cable_temp_1": 36.4, "cable_temp_2": 41.0,
        "cable_temp_3": 28.7, "cable_temp_4": -5.3, "residual_alarm": False,
        "temp_alarm_1": False, "temp_alarm_2": True, "temp_alarm_3": False,
        "temp_alarm_4": False, "transformer_fault": False, "probe_fault": True}),
    "hydrant-01": (2, "generic-pt485-hydrant", "东昌路3号消火栓", {
        "pressure_unit_code": 0, "decimal_places": 3, "pressure": 0.352}),
    "gas-01": (3, "crowcon-xgardiq", "地下车库可燃气体探测器", {
        "gas_concentration": 12.5, "sensor_status": 0, "alarm1_active": False,
        "alarm2_active": False}),
}


@dataclass
class Recorder:
    """An MQTT subscriber that keeps every message it gets (not retained-topic clears)."""

    messages: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.payload:
            with self.lock:
                self.messages.append((msg.topic, json.loads(msg.payload)))

    def on_topic(self, topic: str) -> list[dict[str, object]]:
        with self.lock:
            return [body for t, body in self.messages if t == topic]


@dataclass
class Rig:
    influx: InfluxServer
    db: str
    bus: BusSimThread
    edge_metrics_url: str
    recorder: Recorder

    def query(self, q: str) -> list[dict[str, object]]:
        return self.influx.rows(q, db=self.db)

    def edge(self, key: str) -> float:
        return scrape(self.edge_metrics_url).get(key, 0.0)


def _write_yaml(path: Path, document: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rig(influxd: InfluxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("e2e-rtu")
    db = "e2e_rtu"
    influxd.create_database(db)
    broker = MosquittoServer(tmp / "mosquitto")
    broker.start()
    profiles = load_profiles()
    bus = BusSimThread(RtuBusSim({unit: model_for(profiles.get(p), values)
                                  for unit, p, _n, values in DEVICES.values()}, LINE))
    port = bus.start()
    edge_metrics = free_port()
    edge = _write_yaml(tmp / "edge.yaml", {
        "gateway_id": GATEWAY,
        "broker": {"host": "127.0.0.1", "port": broker.port},
        "metrics": {"host": "127.0.0.1", "port": edge_metrics},
        "devices": [{"id": d, "name": n, "profile": p, "interval_s": 0.5,
                     "params": {"serial_port": port, "baudrate": LINE.baudrate,
                                "parity": LINE.parity, "stopbits": LINE.stopbits, "unit": u}}
                    for d, (u, p, n, _v) in DEVICES.items()]})
    cloud_config = CloudConfig.model_validate({
        "broker": {"host": "127.0.0.1", "port": broker.port, "client_id": "ingest-rtu"},
        "influx": {"url": influxd.url, "database": db},
        "batch": {"max_delay_ms": 100},
        "rules": {"state_path": str(tmp / "alarms.sqlite")},
        "devices": [{"id": d, "gateway": GATEWAY, "profile": p, "name": n, "interval_s": 0.5}
                    for d, (_u, p, n, _v) in DEVICES.items()]})
    recorder = Recorder()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rtu-observer",
                         protocol=mqtt.MQTTv5)
    client.on_message = recorder.on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe([("dc/v1/#", 1)])
    client.loop_start()
    stop = threading.Event()
    cloud = threading.Thread(target=run_cloud, args=(cloud_config, stop, CloudMetrics()),
                             daemon=True)
    edge_proc = DciotProcess("edge", ["edge", "run", str(edge)], tmp / "edge.log")
    try:
        cloud.start()
        edge_proc.start()
        wait_for_port("127.0.0.1", edge_metrics, 30, edge_proc)
        yield Rig(influxd, db, bus, f"http://127.0.0.1:{edge_metrics}/metrics", recorder)
    finally:
        edge_code = edge_proc.stop()
        bus.stop()
        stop.set()
        cloud.join(10)
        client.loop_stop()
        broker.stop()
    assert edge_code == 0, f"edge agent did not stop cleanly:\n{edge_proc.tail()}"


@pytest.mark.parametrize("device", sorted(DEVICES))
def test_exact_values_of_the_fire_profiles_land(rig: Rig, poll: Callable[..., object],
                                                device: str) -> None:
    _unit, profile, _name, expected = DEVICES[device]
    rows = poll(lambda: rig.query(f"SELECT * FROM fire WHERE device='{device}' LIMIT 1"), 30,
                what=f"a {device} reading in InfluxDB")
    (row,) = rows  # type: ignore[misc]
    assert row["gateway"] == GATEWAY and row["profile"] == profile
    assert {k: row[k] for k in expected} == expected
    types = {r["fieldKey"]: r["fieldType"] for r in rig.query("SHOW FIELD KEYS FROM fire")}
    kinds = {bool: "boolean", int: "integer", float: "float"}
    assert {k: types[k] for k in expected} == {k: kinds[type(v)] for k, v in expected.items()}


def test_corrupted_frame_is_counted_and_the_next_one_lands(rig: Rig,
                                                           poll: Callable[..., object]) -> None:
    failed = "dciot_edge_polls_total{device=hydrant-01,result=decode_error}"
    before = rig.edge(failed)
    sim = rig.bus.sim
    rig.bus.call(sim.force(2, "pressure", 0.297))
    rig.bus.call(sim.corrupt_next(2))  # the corrupted answer carries the new value
    poll(lambda: rig.edge(failed) == before + 1, 20, what="the rejected frame to be counted")
    assert sim.stats.corrupted == 1
    poll(lambda: rig.query("SELECT pressure FROM fire WHERE device='hydrant-01' "
                           "AND pressure = 0.297"), 20, what="the next poll's value in InfluxDB")
    assert rig.edge(failed) == before + 1
    for other in ("efm-01", "gas-01"):
        assert rig.edge(f"dciot_edge_polls_total{{device={other},result=decode_error}}") == 0
    assert sim.stats.silence_violations == 0


def test_low_hydrant_pressure_raises_the_profile_alarm(rig: Rig,
                                                       poll: Callable[..., object]) -> None:
    topic = contract.alarm_event_topic("major", "fire", "hydrant-01", "pressure_low")
    rig.bus.call(rig.bus.sim.force(2, "pressure", 0.118))
    raised = poll(lambda: [b for b in rig.recorder.on_topic(topic) if b["state"] == "raised"],
                  30, what="the low-pressure alarm")
    event = raised[0]  # type: ignore[index]
    assert event["title_zh"] == "东昌路3号消火栓水压过低：0.118 MPa（限值 0.14 MPa）"
    rig.bus.call(rig.bus.sim.force(2, "pressure", 0.352))
    poll(lambda: [b for b in rig.recorder.on_topic(topic) if b["state"] == "cleared"], 30,
         what="the alarm to clear")
