"""Ingest throughput: publish N synthetic readings as fast as possible, measure what lands.

Starts its own mosquitto and influxd on free loopback ports and runs `dciot cloud run` as a
separate process, so its CPU can be read from /proc. Prints points/s that landed in InfluxDB
(counted there, not by the ingest) and CPU seconds of ingest, mosquitto and influxd.

    .venv/bin/python benchmarks/ingest.py --readings 50000 --devices 500

Bounded: stops after --readings messages or --timeout seconds, whichever is first; talks only
to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dciot.demo.monitor import scrape, total
from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import InfluxServer, MosquittoServer, free_port
from edge_agent.uplink.contract import Reading, encode_readings, readings_topic

CLK_TCK = os.sysconf("SC_CLK_TCK")
GATEWAY = "gw-bench"


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process from /proc (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pump_values(i: int) -> dict[str, object]:
    return {"pump1_running": i % 2 == 0, "pump2_running": False, "pump1_current": 40.0 + i % 7,
            "pump2_current": 0.0, "pump1_frequency": 50.0, "pump2_frequency": 0.0,
            "sump_level": 2.0 + (i % 100) / 100, "outlet_pressure": 0.33, "flow": 350.0,
            "total_volume": 1000.0 + i, "fault_code": 0, "pump1_fault": False,
            "pump2_fault": False}


def count_points(influx: InfluxServer, db: str) -> int:
    result = influx.query("SELECT count(sump_level) FROM pump_station", db=db)
    series = result["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def _publish_all(publisher: mqtt.Client, payloads: list[tuple[str, bytes]],
                 timeout_s: float) -> float:
    started = time.monotonic()
    infos = [publisher.publish(topic, body, qos=1) for topic, body in payloads]
    for info in infos:
        info.wait_for_publish(timeout_s)
    return time.monotonic() - started


def _wait_written(metrics_url: str, target: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if total(scrape(metrics_url), "dciot_ingest_points_written_total") >= target:
            return
        time.sleep(0.05)


def _cpu(procs: dict[str, int | None]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in procs.items()}


def run(readings: int, devices: int, timeout_s: float, workdir: Path) -> dict[str, object]:
    """Phase "live": publish while the ingest runs. Phase "drain": the ingest is stopped while
    the readings are published (its persistent session queues them in mosquitto), then started:
    this measures the ingest alone, without the publisher competing for the CPU."""
    mosq = MosquittoServer(workdir / "mosquitto")
    influx = InfluxServer(workdir / "influxdb")
    mosq.start()
    influx.start()
    db = "bench"
    metrics_port = free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    config = {
        "broker": {"host": "127.0.0.1", "port": mosq.port, "client_id": "ingest-bench"},
        "influx": {"url": influx.url, "database": db},
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "devices": [{"id": f"ps-{d:05d}", "gateway": GATEWAY, "profile": "dc-pumpstation-v1"}
                    for d in range(devices)],
    }
    config_path = workdir / "cloud.yaml"
    config_path.write_text(yaml.safe_dump(config))

    def ingest_process(n: int) -> DciotProcess:
        proc = DciotProcess("ingest", ["cloud", "run", str(config_path), "--log-level",
                                       "warning"], workdir / f"ingest{n}.log")
        proc.start()
        wait_for_port("127.0.0.1", metrics_port, 30, proc)
        return proc

    ingest = ingest_process(1)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher",
                            protocol=mqtt.MQTTv5)
    publisher.max_inflight_messages_set(1000)
    publisher.max_queued_messages_set(0)
    publisher.connect("127.0.0.1", mosq.port)
    publisher.loop_start()
    try:
        base_ts = int(time.time() * 1000) - readings  # distinct timestamps, all in the past
        payloads = []
        for i in range(readings):
            device = f"ps-{i % devices:05d}"
            payloads.append((readings_topic(GATEWAY, device), encode_readings(
                GATEWAY, device, "dc-pumpstation-v1", [Reading(base_ts + i, pump_values(i))])))
        half = readings // 2
        servers = {"mosquitto": mosq.pid, "influxd": influx.pid}
        time.sleep(1.0)  # let the ingest's subscription settle before the clock starts
        # live
        cpu0 = _cpu({"ingest": ingest.pid, **servers})
        started = time.monotonic()
        publish_s = _publish_all(publisher, payloads[:half], timeout_s)
        _wait_written(metrics_url, half, started + timeout_s)
        live_s = time.monotonic() - started
        cpu1 = _cpu({"ingest": ingest.pid, **servers})
        # drain
        ingest.stop()
        _publish_all(publisher, payloads[half:], timeout_s)
        ingest = ingest_process(2)
        cpu2 = _cpu({"ingest": ingest.pid, **servers})
        started = time.monotonic()
        _wait_written(metrics_url, readings - half, started + timeout_s)
        drain_s = time.monotonic() - started
        cpu3 = _cpu({"ingest": ingest.pid, **servers})
        in_influx = count_points(influx, db)
        return {
            "readings_published": readings,
            "points_in_influxdb": in_influx,
            "fields_per_point": len(pump_values(0)),
            "devices": devices,
            "live": {"readings": half, "publish_seconds": round(publish_s, 2),
                     "landed_seconds": round(live_s, 2),
                     "points_per_second": round(half / live_s),
                     "cpu_seconds": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu0}},
            "drain": {"readings": readings - half, "landed_seconds": round(drain_s, 2),
                      "points_per_second": round((readings - half) / drain_s),
                      "cpu_seconds": {k: round(cpu3[k] - cpu2[k], 2) for k in cpu2},
                      "ingest_cpu_us_per_reading": round(
                          (cpu3["ingest"] - cpu2["ingest"]) / (readings - half) * 1e6)},
        }
    finally:
        publisher.loop_stop()
        ingest.stop()
        mosq.stop()
        influx.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dciot-bench-") as tmp:
        result = run(args.readings, args.devices, args.timeout, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
