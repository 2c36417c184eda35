"""Commands executed end to end on real processes: a test client publishes dc.command/1 on
mosquitto, `dciot edge run` executes it on `dciot sim run` over Modbus TCP and answers
dc.command-result/1. The simulators run with physics off, so registers only change by writes
and forced values; their control API shows what the device holds."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import MosquittoServer, free_port
from device_profiles.schema import load_profiles
from edge_agent.commands.contract import (
    CommandRequest,
    command_request_topic,
    command_result_topic,
)
from edge_agent.protocols.modbus.driver import ModbusDriver
from edge_agent.protocols.modbus.transport import ModbusTcpTransport
from edge_agent.scaling import to_engineering
from edge_agent.uplink import contract
from firmware_sims.control import get_state, send_fault

GATEWAY = "gw-cmd"
POLE_VALUES = {"lamp_on": True, "dimming": 80, "voltage": 221.3}
PUMP_VALUES = {"pump1_running": False, "pump2_running": False, "sump_level": 2.0,
               "fault_code": 0}


@dataclass
class Station:
    broker: MosquittoServer
    client: mqtt.Client
    control_url: str
    pole_port: int
    pump_port: int
    metrics_url: str
    edge: DciotProcess
    messages: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload) if msg.payload else {}
        with self.lock:
            self.messages.append((msg.topic, body))

    def results(self, command_id: str) -> list[dict[str, object]]:
        with self.lock:
            return [b for t, b in self.messages if "/cmd/res/" in t and b.get("id") == command_id]

    def readings(self, device: str) -> list[dict[str, object]]:
        topic = contract.readings_topic(GATEWAY, device)
        with self.lock:
            return [r for t, b in self.messages if t == topic
                    for r in b["readings"]]  # type: ignore[union-attr]

    def send(self, device: str, command: str, params: dict[str, object] | None = None, *,
             command_id: str | None = None, issued_ms: int | None = None,
             lifetime_ms: int = 60_000) -> CommandRequest:
        issued = issued_ms if issued_ms is not None else time.time_ns() // 1_000_000
        request = CommandRequest(id=command_id or str(uuid.uuid4()), device=device,
                                 command=command, params=params or {}, issued_by="测试员",
                                 issued_ts=issued, expires_ts=issued + lifetime_ms)
        self.publish(request)
        return request

    def publish(self, request: CommandRequest) -> None:
        info = self.client.publish(command_request_topic(GATEWAY, request.device),
                                   request.encode(), qos=1)
        info.wait_for_publish(5)

    def device(self, port: int, unit: int = 1) -> dict[str, object]:
        values: dict[str, object] = get_state(self.control_url)["devices"][f"{port}:{unit}"][
            "values"]
        return values

    def metric(self, outcome: str) -> float:
        with urllib.request.urlopen(self.metrics_url) as response:
            text = response.read().decode()
        prefix = f'dciot_edge_commands_total{{outcome="{outcome}"}} '
        return sum(float(line[len(prefix):]) for line in text.splitlines()
                   if line.startswith(prefix))


def _write_yaml(path: Path, document: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    tmp = tmp_path_factory.mktemp("commands")
    broker = MosquittoServer(tmp / "mosquitto")
    broker.start()
    pole_port, pump_port, control_port, metrics_port = (free_port() for _ in range(4))
    sims = _write_yaml(tmp / "sims.yaml", {
        "physics": False,
        "control": {"host": "127.0.0.1", "port": control_port},
        "servers": [
            {"host": "127.0.0.1", "port": pole_port, "units": [
                {"unit": 1, "profile": "dc-smartpole-v1", "initial": POLE_VALUES}]},
            {"host": "127.0.0.1", "port": pump_port, "units": [
                {"unit": 1, "profile": "dc-pumpstation-v1", "initial": PUMP_VALUES}]}]})
    edge_config = _write_yaml(tmp / "edge.yaml", {
        "gateway_id": GATEWAY,
        "broker": {"host": "127.0.0.1", "port": broker.port},
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "devices": [
            {"id": "pole-001", "name": "东昌路1号灯杆", "profile": "dc-smartpole-v1",
             "host": "127.0.0.1", "port": pole_port, "unit": 1, "interval_s": 0.5},
            {"id": "ps-01", "name": "1号扬水站", "profile": "dc-pumpstation-v1",
             "host": "127.0.0.1", "port": pump_port, "unit": 1, "interval_s": 0.5},
            {"id": "pole-dead", "profile": "dc-smartpole-v1", "host": "127.0.0.1",
             "port": free_port(), "unit": 1, "interval_s": 5}]})
    sim = DciotProcess("sims", ["sim", "run", str(sims)], tmp / "sims.log")
    edge = DciotProcess("edge", ["edge", "run", str(edge_config)], tmp / "edge.log")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cmd-test", protocol=mqtt.MQTTv5)
    station = Station(broker, client, f"http://127.0.0.1:{control_port}", pole_port, pump_port,
                      f"http://127.0.0.1:{metrics_port}/metrics", edge)
    client.on_message = station.on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe([(f"dc/v1/gw/{GATEWAY}/#", 1)])
    client.loop_start()
    try:
        sim.start()
        for port in (pole_port, pump_port, control_port):
            wait_for_port("127.0.0.1", port, 30, sim)
        edge.start()
        wait_for_port("127.0.0.1", metrics_port, 30, edge)
        deadline = time.monotonic() + 30
        while not (station.readings("pole-001") and station.readings("ps-01")):
            assert time.monotonic() < deadline, f"no readings:\n{edge.tail()}"
            time.sleep(0.1)
        yield station
    finally:
        code = edge.stop()
        sim.stop()
        client.loop_stop()
        broker.stop()
    assert code == 0, f"edge agent did not stop cleanly:\n{edge.tail()}"


def _result(station: Station, request: CommandRequest, poll: Callable[..., object]
            ) -> dict[str, object]:
    found = poll(lambda: station.results(request.id), 30,
                 what=f"the result of {request.command}")
    return found[0]  # type: ignore[index,no-any-return]


def test_dimming_succeeds_and_the_read_back_confirms_it(
        station: Station, poll: Callable[..., object]) -> None:
    before = station.metric("succeeded")
    request = station.send("pole-001", "set_dimming", {"level": 35})
    result = _result(station, request, poll)
    assert result["outcome"] == "succeeded", result
    assert result["readback"] == "dimming" and result["value"] == 35
    assert result["device"] == "pole-001" and result["command"] == "set_dimming"
    assert result["started_ts"] <= result["finished_ts"]  # type: ignore[operator]
    assert station.device(station.pole_port)["dimming"] == 35
    poll(lambda: any(r["values"]["dimming"] == 35  # type: ignore[index]
                     for r in station.readings("pole-001")), 10, what="a reading of 35 %")
    assert station.metric("succeeded") == before + 1
    assert [t for t, b in station.messages if b.get("id") == request.id and "/cmd/res/" in t] \
        == [command_result_topic(GATEWAY, "pole-001")]


def test_lamp_off_then_on(station: Station, poll: Callable[..., object]) -> None:
    off = _result(station, station.send("pole-001", "lamp_off"), poll)
    assert off["outcome"] == "succeeded" and off["value"] is False, off
    assert station.device(station.pole_port)["lamp_on"] is False
    on = _result(station, station.send("pole-001", "lamp_on"), poll)
    assert on["outcome"] == "succeeded" and on["value"] is True, on
    assert station.device(station.pole_port)["lamp_on"] is True


def test_out_of_range_dimming_is_rejected_naming_the_parameter(
        station: Station, poll: Callable[..., object]) -> None:
    before = station.device(station.pole_port)["dimming"]
    result = _result(station, station.send("pole-001", "set_dimming", {"level": 150}), poll)
    assert result["outcome"] == "rejected", result
    assert "level" in str(result["reason_en"]) and "调光比例" in str(result["reason_zh"])
    assert result["started_ts"] is None
    assert station.device(station.pole_port)["dimming"] == before


def test_pump_start_on_a_dry_sump_is_refused_by_the_interlock(
        station: Station, poll: Callable[..., object]) -> None:
    send_fault(station.control_url, port=station.pump_port, unit=1, action="force",
               point="sump_level", value=0.2)
    try:
        poll(lambda: any(r["values"]["sump_level"] == 0.2  # type: ignore[index]
                         for r in station.readings("ps-01")), 10, what="the low sump reading")
        result = _result(station, station.send("ps-01", "pump1_start"), poll)
    finally:
        send_fault(station.control_url, port=station.pump_port, unit=1, action="release",
                   point="sump_level")
    assert result["outcome"] == "rejected", result
    assert result["interlock"] == "sump_not_dry"
    assert result["value"] == 0.2 and result["limit"] == 0.3
    assert result["reason_zh"] == "1号扬水站集水池水位 0.20 m 低于干转保护水位 0.30 m，禁止启泵"
    assert station.device(station.pump_port)["pump1_run_command"] is False


def test_an_expired_request_is_not_executed(station: Station,
                                            poll: Callable[..., object]) -> None:
    assert station.device(station.pole_port)["lamp_on"] is True
    issued = time.time_ns() // 1_000_000 - 120_000
    result = _result(station, station.send("pole-001", "lamp_off", issued_ms=issued,
                                           lifetime_ms=60_000), poll)
    assert result["outcome"] == "expired", result
    assert result["started_ts"] is None
    assert station.device(station.pole_port)["lamp_on"] is True


def test_a_redelivered_command_executes_once(station: Station,
                                             poll: Callable[..., object]) -> None:
    first = station.send("pole-001", "set_dimming", {"level": 20})
    station.publish(first)  # delivered twice back to back
    answers = poll(lambda: len(station.results(first.id)) >= 2 and station.results(first.id),
                   30, what="two answers")
    done = [a for a in answers if a["outcome"] == "succeeded"]  # type: ignore[union-attr]
    assert len(done) >= 1, answers
    assert all(a == done[0] or a["outcome"] == "duplicate" for a in answers)  # type: ignore[index]
    later = _result(station, station.send("pole-001", "set_dimming", {"level": 60}), poll)
    assert later["outcome"] == "succeeded"
    station.publish(first)  # a late redelivery: answered with the first result, not executed
    poll(lambda: len(station.results(first.id)) >= 3, 30, what="the third answer")
    assert station.results(first.id)[2] == done[0]
    assert station.device(station.pole_port)["dimming"] == 60


def test_unknown_device_and_malformed_requests_are_rejected(
        station: Station, poll: Callable[..., object]) -> None:
    unknown = _result(station, station.send("pole-999", "lamp_on"), poll)
    assert unknown["outcome"] == "rejected" and "pole-999" in str(unknown["reason_en"])
    bad_id = str(uuid.uuid4())
    station.client.publish(command_request_topic(GATEWAY, "pole-001"),
                           json.dumps({"id": bad_id, "device": "pole-001",
                                       "command": "lamp_on"}).encode(), qos=1)
    malformed = _result(station, CommandRequest.model_construct(id=bad_id, command="lamp_on"),
                        poll)
    assert malformed["outcome"] == "rejected" and malformed["device"] == "pole-001"
    assert station.device(station.pole_port)["lamp_on"] is True


def test_a_device_that_cannot_be_reached_fails(station: Station,
                                               poll: Callable[..., object]) -> None:
    result = _result(station, station.send("pole-dead", "lamp_on"), poll)
    assert result["outcome"] == "failed", result
    assert result["started_ts"] is not None and "写入设备失败" in str(result["reason_zh"])


def test_a_write_the_read_back_does_not_confirm_times_out(
        station: Station, poll: Callable[..., object]) -> None:
    """A fault reset on a station whose fault persists (forced fault code 3, no physics): the
    reset coil is written, the read-back never shows fault_code 0, so the command ends
    `timeout` after its within_s (30 s)."""
    send_fault(station.control_url, port=station.pump_port, unit=1, action="force",
               point="fault_code", value=3)
    try:
        request = station.send("ps-01", "fault_reset")
        found = poll(lambda: station.results(request.id), 45, what="the timeout")
    finally:
        send_fault(station.control_url, port=station.pump_port, unit=1, action="release",
                   point="fault_code")
    result = found[0]  # type: ignore[index]
    assert result["outcome"] == "timeout", result
    assert result["readback"] == "fault_code" and result["value"] == 3 and result["limit"] == 0
    elapsed = result["finished_ts"] - result["started_ts"]
    assert 30_000 <= elapsed < 35_000
    assert station.device(station.pump_port)["fault_reset"] is True


def test_multiple_write_function_codes_over_tcp(station: Station) -> None:
    """FC15 and FC16 (the executor uses whatever the profile's mapping names)."""
    pole = load_profiles().get("dc-smartpole-v1")

    async def write_and_read() -> tuple[object, object]:
        transport = ModbusTcpTransport("127.0.0.1", station.pole_port, 1.0)
        driver = ModbusDriver(pole, transport, 1)
        try:
            await driver.write_point(pole.point("dimming"), 45, 16)
            await driver.write_point(pole.point("lamp_on"), False, 15)
            return (to_engineering(pole.point("dimming"),
                                   await driver.read_point(pole.point("dimming"))),
                    to_engineering(pole.point("lamp_on"),
                                   await driver.read_point(pole.point("lamp_on"))))
        finally:
            await driver.write_point(pole.point("lamp_on"), True, 5)
            await transport.close()

    assert asyncio.run(write_and_read()) == (45, False)
    values = station.device(station.pole_port)
    assert values["dimming"] == 45 and values["lamp_on"] is True
