"""A whole pipeline of real processes that a chaos test can break: simulator, edge agent,
mosquitto, ingest (`dciot cloud run`) and influxd, each stoppable and killable by PID."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from dciot.demo.monitor import scrape, total
from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import InfluxServer, MosquittoServer, free_port
from firmware_sims.control import send_fault

GATEWAY = "gw-chaos"
DEVICES = 4
INTERVAL_S = 0.1
POLE_VALUES = {"lamp_on": True, "dimming": 80, "voltage": 221.3, "current": 0.523,
               "active_power": 115.7, "energy": 12345.67, "pm25": 35, "pm10": 58,
               "temperature": -3.5, "humidity": 45.2, "noise": 52.3, "tilt": 0.37,
               "emergency_button": False}


@dataclass
class Rig:
    tmp: Path
    buffer_max_bytes: int = 64 * 1024 * 1024
    mosquitto: MosquittoServer = field(init=False)
    influx: InfluxServer = field(init=False)
    sim_port: int = field(default_factory=free_port)
    control_port: int = field(default_factory=free_port)
    edge_metrics_port: int = field(default_factory=free_port)
    cloud_metrics_port: int = field(default_factory=free_port)
    processes: dict[str, DciotProcess] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mosquitto = MosquittoServer(self.tmp / "mosquitto")
        self.influx = InfluxServer(self.tmp / "influxdb")

    # --- set-up ---------------------------------------------------------------------------
    def _yaml(self, name: str, document: dict[str, object]) -> Path:
        path = self.tmp / name
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        return path

    def start(self) -> None:
        self.mosquitto.start()
        self.influx.start()
        self._yaml("sims.yaml", {
            "physics": False, "control": {"host": "127.0.0.1", "port": self.control_port},
            "servers": [{"host": "127.0.0.1", "port": self.sim_port, "units": [
                {"unit": u, "profile": "dc-smartpole-v1", "initial": POLE_VALUES}
                for u in range(1, DEVICES + 1)]}]})
        devices = [{"id": f"pole-{u:03d}", "profile": "dc-smartpole-v1", "host": "127.0.0.1",
                    "port": self.sim_port, "unit": u, "interval_s": INTERVAL_S}
                   for u in range(1, DEVICES + 1)]
        self._yaml("edge.yaml", {
            "gateway_id": GATEWAY,
            "broker": {"host": "127.0.0.1", "port": self.mosquitto.port, "reconnect_max_s": 1,
                       "keepalive_s": 5},
            "metrics": {"host": "127.0.0.1", "port": self.edge_metrics_port},
            "buffer": {"path": str(self.tmp / "edge-buffer.sqlite"),
                       "max_bytes": self.buffer_max_bytes, "replay_rate_per_s": 2000},
            "devices": devices})
        self._yaml("cloud.yaml", {
            "broker": {"host": "127.0.0.1", "port": self.mosquitto.port,
                       "client_id": "ingest-chaos", "reconnect_max_s": 1},
            "influx": {"url": self.influx.url, "database": "chaos"},
            "batch": {"max_delay_ms": 100, "retry_initial_s": 0.2, "retry_max_s": 1},
            "metrics": {"host": "127.0.0.1", "port": self.cloud_metrics_port},
            "devices": [{"id": d["id"], "gateway": GATEWAY, "profile": d["profile"],
                         "interval_s": INTERVAL_S} for d in devices]})
        self.processes["sim"] = DciotProcess("sim", ["sim", "run", str(self.tmp / "sims.yaml")],
                                             self.tmp / "sim.log")
        self.processes["sim"].start()
        wait_for_port("127.0.0.1", self.control_port, 30, self.processes["sim"])
        self.start_cloud()
        self.start_edge()

    def _service(self, name: str, args: list[str], port: int) -> None:
        n = self.starts[name] = self.starts.get(name, 0) + 1
        proc = DciotProcess(name, args, self.tmp / f"{name}{n}.log")
        proc.start()
        self.processes[name] = proc
        wait_for_port("127.0.0.1", port, 30, proc)

    def start_edge(self) -> None:
        self._service("edge", ["edge", "run", str(self.tmp / "edge.yaml")],
                      self.edge_metrics_port)

    def start_cloud(self) -> None:
        self._service("cloud", ["cloud", "run", str(self.tmp / "cloud.yaml")],
                      self.cloud_metrics_port)

    def stop(self) -> None:
        for proc in self.processes.values():
            proc.stop()
        self.mosquitto.stop()
        self.influx.stop()

    # --- observations ---------------------------------------------------------------------
    def edge_metric(self, name: str) -> float:
        return total(scrape(f"http://127.0.0.1:{self.edge_metrics_port}/metrics"), name)

    def cloud_metric(self, name: str) -> float:
        return total(scrape(f"http://127.0.0.1:{self.cloud_metrics_port}/metrics"), name)

    def points_in_influx(self) -> int:
        result = self.influx.query("SELECT count(voltage) FROM smart_pole", db="chaos")
        series = result["results"][0].get("series", [])
        return int(series[0]["values"][0][1]) if series else 0

    def field_ranges(self) -> dict[str, tuple[object, object]]:
        fields = ["voltage", "energy", "temperature", "tilt", "dimming", "lamp_on"]
        ranges: dict[str, tuple[object, object]] = {}
        for f in fields[:5]:
            row = self.influx.query(f"SELECT min({f}), max({f}) FROM smart_pole",
                                    db="chaos")["results"][0]["series"][0]["values"][0]
            ranges[f] = (row[1], row[2])
        row = self.influx.query("SELECT count(lamp_on) FROM smart_pole WHERE lamp_on = false",
                                db="chaos")["results"][0].get("series")
        ranges["lamp_on_false"] = (0 if not row else row[0]["values"][0][1], 0)
        return ranges

    def wait(self, predicate: object, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if predicate():  # type: ignore[operator]
                    return
            except OSError:
                pass  # a service being restarted
            time.sleep(0.2)
        pytest.fail(f"timed out after {timeout_s} s waiting for {what}")

    def wait_landing(self, more_than: int = 0) -> None:
        self.wait(lambda: self.points_in_influx() > more_than, 30, "points to land")

    def mute_all(self) -> None:
        for unit in range(1, DEVICES + 1):
            send_fault(f"http://127.0.0.1:{self.control_port}", port=self.sim_port, unit=unit,
                       action="mute")

    def stop_taking_readings(self) -> int:
        """Mute every device, wait for the edge buffer to drain; return K, the readings taken."""
        self.mute_all()
        self.wait(lambda: self.edge_metric("dciot_edge_buffered_readings") == 0
                  and self.edge_metric("dciot_edge_in_flight_messages") == 0, 60,
                  "the edge buffer to drain")
        return int(self.edge_metric("dciot_edge_readings_recorded"))

    def settled_points(self, expected: int) -> int:
        """Points in InfluxDB once the ingest has nothing pending and the count is `expected`
        (or the deadline passed); a later extra point would show as a mismatch."""
        self.wait(lambda: self.cloud_metric("dciot_ingest_pending_messages") == 0
                  and self.points_in_influx() >= expected, 30, f"{expected} points")
        return self.points_in_influx()


@pytest.fixture
def rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    marker = request.node.get_closest_marker("buffer_max_bytes")
    rig = Rig(tmp_path, **({"buffer_max_bytes": marker.args[0]} if marker else {}))
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()
