"""End to end: CJ/T 188 water meters simulated on a pseudo-terminal -> edge agent (a real
`dciot edge run` process opening the tty with pyserial) -> mosquitto -> ingest -> influxd.

The meters' values and clocks are fixed, so the exact values that must land are known; faults
(a corrupted answer, a low battery) are injected into the simulator, which runs on its own event
loop in a thread of this test process.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
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
from edge_agent.protocols.cjt188.metering import ValveState
from edge_agent.uplink import contract
from firmware_sims.cjt188_meter import Cjt188MeterBus, SimMeter

GATEWAY = "gw-cjt188"
PROFILE = "dc-watermeter-cjt188-v1"
CLOCK = datetime(2024, 5, 6, 7, 8, 9)  # the meters' clock, local time (UTC+8)
METERS = {  # device id -> (address, name)
    "wm-101": ("78330123456789", "3号楼101室"),
    "wm-102": ("00000000000102", "3号楼102室"),
}
EXPECTED_101 = {
    "cumulative_flow": 1234.56, "settlement_flow": 1200.0, "valve_open": True,
    "valve_abnormal": False, "battery_low": False, "status": 0,
    "meter_time": int(CLOCK.replace(tzinfo=timezone(timedelta(hours=8))).timestamp()),
}


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


class SimThread:
    """The meter bus simulator on its own event loop in a thread."""

    def __init__(self, meters: list[SimMeter]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.sim = Cjt188MeterBus(meters)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def call(self, action: Callable[[Cjt188MeterBus], None]) -> None:
        """Apply a fault on the simulator's loop, all at once."""

        async def apply() -> None:
            action(self.sim)

        self.run(apply())

    def start(self) -> str:
        self.thread.start()
        self.run(self.sim.start())
        return self.sim.port

    def stop(self) -> None:
        self.run(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Rig:
    influx: InfluxServer
    db: str
    sim: SimThread
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
    tmp = tmp_path_factory.mktemp("e2e-cjt188")
    db = "e2e_cjt188"
    influxd.create_database(db)
    broker = MosquittoServer(tmp / "mosquitto")
    broker.start()
    sim = SimThread([
        SimMeter(METERS["wm-101"][0], cumulative_m3=Decimal("1234.56"),
                 settlement_m3=Decimal("1200.00"), clock=CLOCK),
        SimMeter(METERS["wm-102"][0], cumulative_m3=Decimal("0.07"),
                 valve=ValveState.CLOSED, clock=CLOCK)])
    port = sim.start()
    edge_metrics = free_port()
    # A pty takes no parity (this kernel refuses PARENB on it): the rig runs the port 8N1.
    edge = _write_yaml(tmp / "edge.yaml", {
        "gateway_id": GATEWAY,
        "broker": {"host": "127.0.0.1", "port": broker.port},
        "metrics": {"host": "127.0.0.1", "port": edge_metrics},
        "devices": [{"id": d, "name": name, "profile": PROFILE, "interval_s": 0.5,
                     "params": {"serial_port": port, "address": address, "parity": "N"}}
                    for d, (address, name) in METERS.items()]})
    cloud_config = CloudConfig.model_validate({
        "broker": {"host": "127.0.0.1", "port": broker.port, "client_id": "ingest-cjt188"},
        "influx": {"url": influxd.url, "database": db},
        "batch": {"max_delay_ms": 100},
        "rules": {"state_path": str(tmp / "alarms.sqlite")},
        "devices": [{"id": d, "gateway": GATEWAY, "profile": PROFILE, "name": name,
                     "interval_s": 0.5} for d, (_a, name) in METERS.items()]})
    recorder = Recorder()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cjt188-observer",
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
        yield Rig(influxd, db, sim, f"http://127.0.0.1:{edge_metrics}/metrics", recorder)
    finally:
        edge_code = edge_proc.stop()
        sim.stop()
        stop.set()
        cloud.join(10)
        client.loop_stop()
        broker.stop()
    assert edge_code == 0, f"edge agent did not stop cleanly:\n{edge_proc.tail()}"


def test_exact_meter_values_land_with_their_types(rig: Rig, poll: Callable[..., object]
                                                  ) -> None:
    rows = poll(lambda: rig.query("SELECT * FROM water WHERE device='wm-101' LIMIT 1"), 30,
                what="a wm-101 reading in InfluxDB")
    (row,) = rows  # type: ignore[misc]
    assert row["gateway"] == GATEWAY and row["profile"] == PROFILE
    assert {k: row[k] for k in EXPECTED_101} == EXPECTED_101
    other = poll(lambda: rig.query("SELECT * FROM water WHERE device='wm-102' LIMIT 1"), 30,
                 what="a wm-102 reading")
    (row,) = other  # type: ignore[misc]
    assert (row["cumulative_flow"], row["valve_open"], row["status"]) == (0.07, False, 1)
    assert row["settlement_flow"] is None  # the meter sends FF: not provided, not written
    types = {r["fieldKey"]: r["fieldType"] for r in rig.query("SHOW FIELD KEYS FROM water")}
    assert {k: types[k] for k in EXPECTED_101} == {
        "cumulative_flow": "float", "settlement_flow": "float", "meter_time": "integer",
        "status": "integer", "valve_open": "boolean", "valve_abnormal": "boolean",
        "battery_low": "boolean"}


def test_corrupted_answer_is_rejected_and_counted_while_the_next_poll_lands(
        rig: Rig, poll: Callable[..., object]) -> None:
    failed = "dciot_edge_polls_total{device=wm-101,result=decode_error}"
    before = rig.edge(failed)
    address = METERS["wm-101"][0]

    def corrupt(sim: Cjt188MeterBus) -> None:  # the corrupted answer carries the new value
        sim.set_cumulative(address, Decimal("1300.25"))
        sim.corrupt_next_answer(address)

    rig.sim.call(corrupt)
    poll(lambda: rig.edge(failed) == before + 1, 20, what="the rejected answer to be counted")
    poll(lambda: rig.query("SELECT cumulative_flow FROM water WHERE device='wm-101' "
                           "AND cumulative_flow = 1300.25"), 20,
         what="the next poll's value in InfluxDB")
    assert rig.edge(failed) == before + 1
    assert rig.edge("dciot_edge_polls_total{device=wm-102,result=decode_error}") == 0


def test_low_battery_raises_the_profile_alarm(rig: Rig, poll: Callable[..., object]) -> None:
    topic = contract.alarm_event_topic("minor", "water", "wm-102", "battery_low")
    rig.sim.call(lambda sim: sim.set_battery_low(METERS["wm-102"][0]))
    raised = poll(lambda: rig.recorder.matching(
        lambda t, b: t == topic and b["state"] == "raised"), 30, what="the battery alarm")
    event = raised[0]  # type: ignore[index]
    assert event["title_zh"] == "3号楼102室水表电池欠压，请安排更换电池"
    rig.sim.call(lambda sim: sim.set_battery_low(METERS["wm-102"][0], False))
    poll(lambda: rig.recorder.matching(lambda t, b: t == topic and b["state"] == "cleared"),
         30, what="the battery alarm to clear")
