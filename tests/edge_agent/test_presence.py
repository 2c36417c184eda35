"""Gateway presence on a real broker: retained birth, last will on a crash, "stopped" on SIGTERM."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from dciot.demo.services import DciotProcess
from dciot.runtime import MosquittoServer, free_port
from edge_agent.uplink import contract


def _latest_status(broker: MosquittoServer, gateway: str) -> Callable[[], dict[str, object]]:
    """Subscribe to the gateway's status; return a getter of the last message seen."""
    seen: list[dict[str, object]] = []
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            seen.append(json.loads(msg.payload))

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe(contract.gateway_status_topic(gateway), qos=1)
    client.loop_start()

    def latest() -> dict[str, object]:
        with lock:
            return seen[-1] if seen else {}

    return latest


def _edge(tmp_path: Path, broker: MosquittoServer, name: str) -> DciotProcess:
    config = {"gateway_id": "gw-presence", "site": "测试站",
              "broker": {"host": "127.0.0.1", "port": broker.port, "keepalive_s": 5},
              "devices": [{"id": "pole-x", "profile": "dc-smartpole-v1", "host": "127.0.0.1",
                           "port": free_port(), "unit": 1, "interval_s": 1}]}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return DciotProcess(name, ["edge", "run", str(path)], tmp_path / f"{name}.log")


def test_birth_then_will_on_crash_then_stopped_on_sigterm(
        tmp_path: Path, mosquitto: MosquittoServer, poll: Callable[..., object]) -> None:
    latest = _latest_status(mosquitto, "gw-presence")
    edge = _edge(tmp_path, mosquitto, "edge1")
    edge.start()
    try:
        poll(lambda: latest().get("state") == "online", 20, what="birth message")
        assert latest()["site"] == "测试站" and latest()["devices"] == 1
        edge.kill()
        poll(lambda: latest().get("state") == "offline", 20, what="last will")
        assert latest()["reason"] == "connection lost"
    finally:
        edge.kill()
    edge2 = _edge(tmp_path, mosquitto, "edge2")
    edge2.start()
    try:
        poll(lambda: latest().get("state") == "online", 20, what="second birth")
        started = time.monotonic()
        assert edge2.stop(timeout_s=10) == 0
        assert time.monotonic() - started < 5, "SIGTERM must end the agent within seconds"
        poll(lambda: latest().get("state") == "offline", 10, what="clean offline")
        assert latest()["reason"] == "stopped"
    finally:
        edge2.kill()


def test_sigterm_while_a_request_is_pending_exits_promptly(
        tmp_path: Path, mosquitto: MosquittoServer, poll: Callable[..., object]) -> None:
    """A device that accepts the connection but never answers keeps a request pending most of
    the time; SIGTERM must still end the agent within seconds (pymodbus turns the cancellation
    of a pending request into an I/O error, which must not be mistaken for a timeout)."""
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    config = {"gateway_id": "gw-pending", "broker": {"host": "127.0.0.1", "port": mosquitto.port},
              "devices": [{"id": "pole-silent", "profile": "dc-smartpole-v1",
                           "host": "127.0.0.1", "port": silent.getsockname()[1], "unit": 1,
                           "interval_s": 0.2}]}
    path = tmp_path / "pending.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    edge = DciotProcess("edge", ["edge", "run", str(path)], tmp_path / "pending.log")
    latest = _latest_status(mosquitto, "gw-pending")
    edge.start()
    try:
        poll(lambda: latest().get("state") == "online" and accepted, 20,
             what="the agent connected to the silent device")
        started = time.monotonic()
        assert edge.stop(timeout_s=10) == 0, edge.tail()
        assert time.monotonic() - started < 5
    finally:
        edge.kill()
        silent.close()
