"""End to end: a simulated user information transmission device (UITD) -> TCP -> edge agent
(a real `dciot edge run` process with a gbt26875 listener) -> mosquitto -> ingest -> influxd,
and the cloud's rule engine raising the profile's alarms.

The UITD simulator (firmware_sims/gbt26875_uitd.py) runs on its own event loop in a thread of
this test process and connects to the agent over loopback TCP; every frame it sends waits for
the agent's GB/T 26875.3 confirm. Readings carry the frame's own time label (UTC+8 local time).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from edge_agent.uplink import contract
from firmware_sims.gbt26875_uitd import Delivery, SimulatedUitd, UitdComponent

GATEWAY = "gw-gbt26875"
UITD = "000000000379"
SMOKE, HYDRANT = 131082, 7
DEVICES = [  # id, name, profile, params
    ("smoke-01", "3号楼7层02室烟感", "dc-smokedetector-v1",
     {"uitd_address": UITD, "system_address": 1, "component_type": 42,
      "component_address": SMOKE}),
    ("hydrant-01", "3号楼消火栓管网", "dc-hydrant-pressure-v1",
     {"uitd_address": UITD, "system_type": 11, "system_address": 1, "component_type": 0,
      "component_address": HYDRANT}),
]
BAD_CHECKSUM = "dciot_edge_frames_rejected_total{protocol=gbt26875,reason=bad_checksum}"


@dataclass
class Recorder:
    """An MQTT subscriber that keeps every message it gets (not the empty payloads that clear
    retained topics)."""

    messages: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def matching(self, predicate: Callable[[str, dict[str, object]], bool]
                 ) -> list[dict[str, object]]:
        with self.lock:
            return [body for topic, body in self.messages if predicate(topic, body)]


class UitdThread:
    """The simulated UITD on its own event loop in a thread."""

    def __init__(self, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.uitd = SimulatedUitd("127.0.0.1", port, UITD, [
            UitdComponent(SMOKE, description="3号楼7层02室"),
            UitdComponent(HYDRANT, component_type=0, system_type=11)])

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> None:
        self.thread.start()
        self.run(self.uitd.start())

    def stop(self) -> None:
        self.run(self.uitd.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Rig:
    influx: InfluxServer
    db: str
    sim: UitdThread
    edge_metrics_url: str
    recorder: Recorder

    def query(self, q: str) -> list[dict[str, object]]:
        return self.influx.rows(q, db=self.db)

    def edge(self, key: str) -> float:
        return scrape(self.edge_metrics_url).get(key, 0.0)

    def alarms(self, severity: str, device: str, rule: str, state: str
               ) -> list[dict[str, object]]:
        topic = contract.alarm_event_topic(severity, "fire", device, rule)
        return self.recorder.matching(lambda t, b: t == topic and b["state"] == state)


def _write_yaml(path: Path, document: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rig(influxd: InfluxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("e2e-gbt26875")
    db = "e2e_gbt26875"
    influxd.create_database(db)
    broker = MosquittoServer(tmp / "mosquitto")
    broker.start()
    listen_port, edge_metrics = free_port(), free_port()
    edge = _write_yaml(tmp / "edge.yaml", {
        "gateway_id": GATEWAY,
        "broker": {"host": "127.0.0.1", "port": broker.port},
        "metrics": {"host": "127.0.0.1", "port": edge_metrics},
        "devices": [{"id": d, "name": n, "profile": p, "params": params}
                    for d, n, p, params in DEVICES],
        "listeners": [{"kind": "gbt26875", "host": "127.0.0.1", "port": listen_port,
                       "idle_timeout_s": 60}]})
    cloud_config = CloudConfig.model_validate({
        "broker": {"host": "127.0.0.1", "port": broker.port, "client_id": "ingest-gbt26875"},
        "influx": {"url": influxd.url, "database": db},
        "batch": {"max_delay_ms": 100},
        "rules": {"state_path": str(tmp / "alarms.sqlite")},
        "devices": [{"id": d, "gateway": GATEWAY, "profile": p, "name": n}
                    for d, n, p, _params in DEVICES]})
    recorder = Recorder()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gbt26875-observer",
                         protocol=mqtt.MQTTv5)
    client.on_message = recorder.on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe([("dc/v1/#", 1)])
    client.loop_start()
    stop = threading.Event()
    cloud = threading.Thread(target=run_cloud, args=(cloud_config, stop, CloudMetrics()),
                             daemon=True)
    edge_proc = DciotProcess("edge", ["edge", "run", str(edge)], tmp / "edge.log")
    sim = UitdThread(listen_port)
    try:
        cloud.start()
        edge_proc.start()
        wait_for_port("127.0.0.1", edge_metrics, 30, edge_proc)
        wait_for_port("127.0.0.1", listen_port, 30, edge_proc)
        sim.start()
        yield Rig(influxd, db, sim, f"http://127.0.0.1:{edge_metrics}/metrics", recorder)
    finally:
        if sim.thread.is_alive():
            sim.stop()
        edge_code = edge_proc.stop()
        stop.set()
        cloud.join(10)
        client.loop_stop()
        broker.stop()
    assert edge_code == 0, f"edge agent did not stop cleanly:\n{edge_proc.tail()}"


def test_fire_alarm_lands_and_the_cloud_raises_the_profile_alarm(
        rig: Rig, poll: Callable[..., object]) -> None:
    delivery: Delivery = rig.sim.run(rig.sim.uitd.raise_fire_alarm(SMOKE))
    assert (delivery.confirmed, delivery.attempts) == (True, 1)
    assert delivery.at is not None
    rows = poll(lambda: rig.query("SELECT * FROM fire WHERE device='smoke-01' "
                                  "AND fire_alarm = true"), 30, what="the fire alarm in InfluxDB")
    (row,) = rows  # type: ignore[misc]
    assert row["time"] == delivery.at.to_epoch_ms()  # the frame's own time label, UTC+8
    assert row["gateway"] == GATEWAY and row["profile"] == "dc-smokedetector-v1"
    assert {k: row[k] for k in ("fire_alarm", "fault", "shielded", "power_fault", "normal",
                                "state_word")} == {
        "fire_alarm": True, "fault": False, "shielded": False, "power_fault": False,
        "normal": True, "state_word": 3}
    raised = poll(lambda: rig.alarms("critical", "smoke-01", "fire_alarm", "raised"), 30,
                  what="the fire alarm on MQTT")
    event = raised[0]  # type: ignore[index]
    assert event["title_zh"] == "3号楼7层02室烟感火警"
    assert event["device"] == "smoke-01" and event["severity"] == "critical"
    cleared = rig.sim.run(rig.sim.uitd.clear_fire_alarm(SMOKE))
    assert cleared.confirmed
    poll(lambda: rig.alarms("critical", "smoke-01", "fire_alarm", "cleared"), 30,
         what="the fire alarm to clear")


def test_bad_checksum_frame_is_counted_while_the_next_good_one_lands(
        rig: Rig, poll: Callable[..., object]) -> None:
    before = rig.edge(BAD_CHECKSUM)
    uitd = rig.sim.uitd
    uitd.corrupt_next_checksum(resend=False)  # set between deliveries: no race with the loop
    lost: Delivery = rig.sim.run(uitd.report_analog(HYDRANT, analog_type=5, raw=500))
    assert (lost.confirmed, lost.denials) == (False, 1)  # denied, as clause 6.3 says
    landed: Delivery = rig.sim.run(uitd.report_analog(HYDRANT, analog_type=5, raw=3500))
    assert landed.confirmed and landed.at is not None
    poll(lambda: rig.edge(BAD_CHECKSUM) == before + 1, 20, what="the bad frame to be counted")
    rows = poll(lambda: rig.query("SELECT pipe_pressure FROM fire WHERE device='hydrant-01' "
                                  "AND pipe_pressure = 0.35"), 30,
                what="the good frame's pressure in InfluxDB")
    (row,) = rows  # type: ignore[misc]
    assert row["time"] == landed.at.to_epoch_ms()
    assert rig.query("SELECT pipe_pressure FROM fire WHERE device='hydrant-01' "
                     "AND pipe_pressure < 0.1") == []  # the corrupted 0.05 MPa never landed
    assert rig.alarms("major", "hydrant-01", "pressure_low", "raised") == []
    assert rig.edge(BAD_CHECKSUM) == before + 1
