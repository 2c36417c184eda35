"""Real mosquitto and influxd processes in tmp_path, stopped by PID afterwards."""

from __future__ import annotations

import queue
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from dciot.runtime import (
    InfluxServer,
    MissingBinaryError,
    MosquittoServer,
    StartupError,
)

e2e = pytest.mark.e2e


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path / "influx")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path / "mqtt")
    try:
        yield server
    finally:
        server.stop()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.02)


def connected_client(broker: MosquittoServer, name: str) -> mqtt.Client:
    """A VERSION2 client whose network loop runs; caller must disconnect and loop_stop."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"{name}-{uuid.uuid4().hex[:8]}")
    connected: queue.Queue[object] = queue.Queue()
    client.on_connect = lambda _c, _u, _f, reason, _p: connected.put(reason)
    client.connect(broker.host, broker.port)
    client.loop_start()
    reason = connected.get(timeout=10)
    assert not getattr(reason, "is_failure", False), reason
    return client


@e2e
def test_influxd_write_query_and_restart_keeps_data(influx: InfluxServer) -> None:
    influx.start()
    assert influx.running and influx.pid
    influx.create_database("telemetry")
    influx.write_lines(
        "telemetry",
        "water,station=1号扬水站 level=2.5 1700000000000\n"
        "water,station=1号扬水站 level=2.75 1700000001000\n")

    def rows() -> list[list[object]]:
        result = influx.query(
            "SELECT level FROM water WHERE station = '1号扬水站'", db="telemetry")
        return result["results"][0]["series"][0]["values"]

    assert rows() == [[1700000000000, 2.5], [1700000001000, 2.75]]

    port, old_pid = influx.port, influx.pid
    assert influx.stop() is not None
    assert not influx.running
    influx.start()
    assert influx.port == port and influx.pid != old_pid
    assert rows() == [[1700000000000, 2.5], [1700000001000, 2.75]]
    tags = influx.query('SHOW TAG VALUES FROM water WITH KEY = "station"', db="telemetry")
    assert tags["results"][0]["series"][0]["values"] == [["station", "1号扬水站"]]


@e2e
def test_influxd_query_error_raises(influx: InfluxServer) -> None:
    influx.start()
    with pytest.raises(RuntimeError, match="database not found"):
        influx.query("SELECT * FROM nothing", db="missing")


@e2e
def test_mosquitto_delivers_qos1_message(broker: MosquittoServer) -> None:
    broker.start()
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed: queue.Queue[int] = queue.Queue()
    sub = connected_client(broker, "sub")
    pub = connected_client(broker, "pub")
    try:
        sub.on_message = lambda _c, _u, msg: received.put(msg)
        sub.on_subscribe = lambda _c, _u, mid, _r, _p: subscribed.put(mid)
        _, mid = sub.subscribe("dc/test/#", qos=1)
        assert subscribed.get(timeout=10) == mid

        info = pub.publish("dc/test/pole-001", "东昌路 ok".encode(), qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()

        msg = received.get(timeout=10)
        assert msg.topic == "dc/test/pole-001"
        assert msg.payload.decode() == "东昌路 ok"
        assert msg.qos == 1
    finally:
        for client in (sub, pub):
            client.disconnect()
            client.loop_stop()
    log = broker.broker_log_path
    wait_until(lambda: "New client connected" in log.read_text(errors="replace"))


@e2e
def test_mosquitto_restart_same_port_keeps_retained_message(broker: MosquittoServer) -> None:
    broker.start()
    pub = connected_client(broker, "pub")
    try:
        pub.publish("dc/retained", b"kept", qos=1, retain=True).wait_for_publish(timeout=10)
    finally:
        pub.disconnect()
        pub.loop_stop()

    port = broker.port
    broker.stop()
    assert (broker.run_dir / "mosquitto.db").exists()
    broker.start()
    assert broker.port == port

    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    sub = connected_client(broker, "sub")
    try:
        sub.on_message = lambda _c, _u, msg: received.put(msg)
        sub.subscribe("dc/retained", qos=1)
        msg = received.get(timeout=10)
        assert msg.payload == b"kept" and msg.retain
    finally:
        sub.disconnect()
        sub.loop_stop()


@e2e
def test_kill_then_start_again(broker: MosquittoServer) -> None:
    broker.start()
    old_pid = broker.pid
    assert broker.kill() == -9
    assert not broker.running
    broker.start()
    assert broker.running and broker.pid != old_pid


def test_startup_error_when_port_taken(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = MosquittoServer(tmp_path, port=port)
        try:
            with pytest.raises(StartupError, match=f"127.0.0.1:{port} is already in use"):
                server.start()
        finally:
            server.stop()
        assert server.pid is None


@pytest.mark.parametrize(
    ("server_cls", "package"), [(MosquittoServer, "mosquitto"), (InfluxServer, "influxdb")])
def test_missing_binary_names_binary_and_apt_command(
        tmp_path: Path, server_cls: type[MosquittoServer] | type[InfluxServer],
        package: str) -> None:
    server = server_cls(tmp_path, binary="dciot-no-such-binary")
    with pytest.raises(MissingBinaryError) as info:
        server.start()
    message = str(info.value)
    assert "dciot-no-such-binary" in message
    assert f"sudo apt-get install -y {package}" in message
    assert "make demo" in message
    assert not server.running and server.pid is None
