"""dc.gateway-stats/1 on a real broker from a real `dciot edge run`: the totals of poll results
(a simulated Modbus TCP pole) and of rejected frames (a GB/T 26875 frame with a bad checksum on
the listener's TCP socket), every `stats_interval_s`, on each (re)connect and at a clean stop."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import MosquittoServer, free_port
from edge_agent.config import load_gateway_config
from edge_agent.errors import ConfigError
from edge_agent.uplink import contract

GATEWAY = "gw-stats"
UITD = "000000000379"
# ActorLancer/GB-T-26875.3.2011-rs, 示例 1 (a smoke detector's fire alarm), its checksum byte
# (third from the end, before "##") changed from 0x46 to 0x47
BAD_CHECKSUM_FRAME = bytes.fromhex(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 30 00 02"
    " 02 01 01 01 28 0A 00 02 00 02 00" + " 20" * 30 + " 00 02 3A 09 1A 09 0C 47 23 23")


@dataclass
class StatsWatcher:
    """Subscribes to the gateway's stats topic with a persistent session (so nothing sent
    while a restarted broker and this client reconnect is missed); keeps every message."""

    port: int
    messages: list[tuple[bool, dict[str, object]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: mqtt.Client | None = None

    def start(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{GATEWAY}",
                             protocol=mqtt.MQTTv5)
        client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(
            contract.gateway_stats_topic(GATEWAY), qos=1)
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 1)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        client.loop_start()
        self.client = client

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((bool(msg.retain), json.loads(msg.payload)))

    def bodies(self) -> list[dict[str, object]]:
        with self.lock:
            return [body for _retain, body in self.messages]

    def stop(self) -> None:
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()


@pytest.fixture
def watcher(mosquitto: MosquittoServer) -> Iterator[StatsWatcher]:
    w = StatsWatcher(mosquitto.port)
    w.start()
    yield w
    w.stop()


def _write_yaml(path: Path, document: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def _edge_config(broker_port: int, stats_interval_s: float, pole_port: int,
                 listener_port: int) -> dict[str, object]:
    return {
        "gateway_id": GATEWAY,
        "broker": {"host": "127.0.0.1", "port": broker_port, "keepalive_s": 5,
                   "reconnect_max_s": 1},
        "stats_interval_s": stats_interval_s,
        "devices": [
            {"id": "pole-1", "profile": "dc-smartpole-v1", "host": "127.0.0.1",
             "port": pole_port, "unit": 1, "interval_s": 0.2},
            {"id": "smoke-1", "profile": "dc-smokedetector-v1",
             "params": {"uitd_address": UITD, "system_address": 1, "component_type": 40,
                        "component_address": 131082}}],
        "listeners": [{"kind": "gbt26875", "host": "127.0.0.1", "port": listener_port}]}


def _send(port: int, frame: bytes) -> bytes:
    """Send one frame to the listener as a UITD would; return its answer (the deny)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(frame)
        return sock.recv(1024)


def test_totals_of_polls_and_rejected_frames_are_published_every_interval(
        tmp_path: Path, mosquitto: MosquittoServer, watcher: StatsWatcher,
        poll: Callable[..., object]) -> None:
    pole_port, control_port, listener_port = free_port(), free_port(), free_port()
    sims = _write_yaml(tmp_path / "sims.yaml", {
        "physics": False, "control": {"host": "127.0.0.1", "port": control_port},
        "servers": [{"host": "127.0.0.1", "port": pole_port,
                     "units": [{"unit": 1, "profile": "dc-smartpole-v1"}]}]})
    edge_path = _write_yaml(tmp_path / "edge.yaml", _edge_config(
        mosquitto.port, 0.3, pole_port, listener_port))
    sim = DciotProcess("sims", ["sim", "run", str(sims)], tmp_path / "sims.log")
    edge = DciotProcess("edge", ["edge", "run", str(edge_path)], tmp_path / "edge.log")
    sim.start()
    try:
        wait_for_port("127.0.0.1", pole_port, 30, sim)
        edge.start()
        wait_for_port("127.0.0.1", listener_port, 30, edge)

        def ok_polls() -> int:
            return max((int(b["polls"].get("ok", 0)) for b in watcher.bodies()),  # type: ignore[union-attr]
                       default=0)

        poll(lambda: ok_polls() >= 5, 30, what="stats counting ok polls")
        assert _send(listener_port, BAD_CHECKSUM_FRAME)  # denied: the UITD would resend
        found = poll(lambda: [b for b in watcher.bodies()
                              if b["rejected"].get("gbt26875:bad_checksum")], 20,  # type: ignore[union-attr]
                     what="the bad frame counted in the stats")
        latest = found[-1]  # type: ignore[index]
        assert latest["rejected"] == {"gbt26875:bad_checksum": 1}
        assert latest["schema"] == "dc.gateway-stats/1" and latest["gateway"] == GATEWAY
        assert latest["polls"]["ok"] >= 5  # type: ignore[index]
        with watcher.lock:
            messages = list(watcher.messages)
        assert len(messages) >= 3 and not any(retain for retain, _b in messages)
        oks = [int(b["polls"].get("ok", 0)) for _r, b in messages]  # type: ignore[union-attr]
        assert oks == sorted(oks), "totals since start never go down"
        stamps = [int(b["ts"]) for _r, b in messages]  # type: ignore[call-overload]
        assert stamps == sorted(stamps)
        assert edge.stop() == 0, edge.tail()
    finally:
        edge.kill()
        sim.stop()


def test_stats_on_every_connect_and_at_a_clean_stop(
        tmp_path: Path, mosquitto: MosquittoServer, watcher: StatsWatcher,
        poll: Callable[..., object]) -> None:
    """With an hour between periodic reports, every message seen is a connect or the stop; the
    pole's port is closed, so the polls are counted as failed connections."""
    edge_path = _write_yaml(tmp_path / "edge.yaml", _edge_config(
        mosquitto.port, 3600, free_port(), free_port()))
    edge = DciotProcess("edge", ["edge", "run", str(edge_path)], tmp_path / "edge.log")
    edge.start()
    try:
        poll(lambda: len(watcher.bodies()) == 1, 30, what="stats on the first connect")
        mosquitto.stop()
        mosquitto.start()
        reconnected = poll(lambda: watcher.bodies()[1:], 30, what="stats after the reconnect")
        assert int(reconnected[0]["polls"].get("connection", 0)) >= 1  # type: ignore[index]
        assert edge.stop() == 0, edge.tail()
        final = poll(lambda: watcher.bodies()[2:], 10, what="the final stats at stop")
        assert final[0]["polls"]["connection"] >= reconnected[0]["polls"]["connection"]  # type: ignore[index]
        assert len(watcher.bodies()) == 3
    finally:
        edge.kill()


def test_stats_interval_must_be_positive(tmp_path: Path) -> None:
    config = _edge_config(1883, 0, 502, 9527)
    with pytest.raises(ConfigError, match="stats_interval_s"):
        load_gateway_config(_write_yaml(tmp_path / "edge.yaml", config))
    config["stats_interval_s"] = 15
    loaded, _profiles = load_gateway_config(_write_yaml(tmp_path / "edge.yaml", config))
    assert loaded.stats_interval_s == 15


def test_gateway_stats_payload_and_topic() -> None:
    payload = contract.encode_gateway_stats(GATEWAY, 1764060000123, {"ok": 7, "timeout": 1},
                                            {"modbus_rtu:bad_crc": 2})
    assert json.loads(payload) == {
        "schema": "dc.gateway-stats/1", "gateway": GATEWAY, "ts": 1764060000123,
        "polls": {"ok": 7, "timeout": 1}, "rejected": {"modbus_rtu:bad_crc": 2}}
    topic = contract.gateway_stats_topic(GATEWAY)
    assert topic == "dc/v1/gw/gw-stats/stats"
    ref = contract.parse_gateway_topic(topic)
    assert ref is not None and (ref.kind, ref.gateway) == ("stats", GATEWAY)
