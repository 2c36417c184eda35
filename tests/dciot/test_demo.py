"""`dciot demo` end to end, as a user runs it: non-interactive, with a summary file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

# 20 poles + 2 pump stations (Modbus TCP); the fire site: 3 smoke detectors and the hydrant
# main behind a GB/T 26875 UITD, 3 fire sensors on a Modbus RTU bus; the water site: 4 CJ/T 188
# meters, 4 LoRaWAN water meters and 2 LoRaWAN smoke alarms.
DEVICES = {"smart_pole": 20, "pump_station": 2, "fire": 9, "water": 8}
GATEWAYS = 6
ALARMING_FAULTS = 4  # sump level, emergency button, UITD fire alarm, LoRaWAN leak (+ a mute)


def test_demo_runs_the_district_and_raises_and_clears_alarms(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    result = subprocess.run(
        [sys.executable, "-m", "dciot", "demo", "--duration", "25", "--run-dir",
         str(tmp_path / "run"), "--summary-json", str(summary_path)],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    devices = sum(DEVICES.values())
    assert summary["devices_known"] == devices
    assert summary["devices_online"] == devices
    assert summary["gateways_online"] == GATEWAYS
    assert summary["alarms_raised"] >= ALARMING_FAULTS
    assert summary["alarms_cleared"] >= ALARMING_FAULTS
    assert summary["rejected"] == 0
    assert summary["influx_url"].startswith("http://127.0.0.1:")
    assert summary["influx_db"] == "dciot"
    assert summary["event_centre_url"].startswith("http://127.0.0.1:")
    assert summary["events"] >= ALARMING_FAULTS  # each raised alarm became an event
    # Rows per measurement (its most-written field): a UITD's state and analog reports of one
    # component in the same second are one row, so rows can be fewer than points written.
    counts = summary["series_counts"]
    assert summary["points_written"] > devices * 10
    assert sum(counts.get(domain, 0) for domain in DEVICES) > devices * 10
    assert all(counts.get(domain, 0) >= 5 * n for domain, n in DEVICES.items()), counts
    assert counts.get("event_centre", 0) >= 5, counts  # the centre's figures, every 2 s
    assert "注入故障" in result.stdout
    online = re.findall(r"devices online (\d+) / (\d+) \(([^)]*)\)", result.stdout)
    assert online and online[-1][2] == ", ".join(f"{d} {n}/{n}" for d, n in DEVICES.items())
    for domain in ("smart_pole", "pump_station", "fire", "water"):
        for state in ("raised", "cleared"):
            assert re.search(rf"alarm {state}: \w+ {domain} ", result.stdout), (domain, state)
    assert re.search(r"alarm raised: critical fire smoke-3-101 .*火警", result.stdout)


def _anonymous_connect_refused(port: int) -> bool:
    """An anonymous client on the broker's plain listener gets "not authorized"."""
    refused = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda _c, _u, _f, reason, _p: reason.is_failure and refused.set()
    try:
        client.connect("127.0.0.1", port)
    except OSError:
        return False
    client.loop_start()
    try:
        return refused.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()


def test_demo_over_tls_on_a_locked_down_broker(tmp_path: Path) -> None:
    """`dciot demo --tls`: every client authenticates by certificate on the TLS listener; the
    broker has ACLs and refuses an anonymous client on its plain listener."""
    summary_path = tmp_path / "summary.json"
    run = tmp_path / "run"
    demo = subprocess.Popen(
        [sys.executable, "-m", "dciot", "demo", "--tls", "--duration", "20", "--run-dir",
         str(run), "--summary-json", str(summary_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        conf = run / "mosquitto" / "mosquitto.conf"
        deadline = time.monotonic() + 60
        while not (conf.exists() and "acl_file" in conf.read_text()):
            assert time.monotonic() < deadline and demo.poll() is None, "broker never set up"
            time.sleep(0.1)
        text = conf.read_text()
        assert "allow_anonymous false" in text and "require_certificate true" in text
        plain_port = int(re.search(r"^listener (\d+)", text, re.M)[1])  # type: ignore[index]
        deadline = time.monotonic() + 60
        while not _anonymous_connect_refused(plain_port):
            assert time.monotonic() < deadline, "the plain listener never refused anonymity"
            time.sleep(0.2)
        output, _ = demo.communicate(timeout=180)
    finally:
        demo.kill()
    assert demo.returncode == 0, output[-3000:]
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["devices_online"] == sum(DEVICES.values())
    assert summary["gateways_online"] == GATEWAYS
    assert summary["alarms_raised"] >= ALARMING_FAULTS and summary["rejected"] == 0
    assert summary["events"] >= ALARMING_FAULTS
    for key in (run / "pki").glob("*.key"):  # private keys are the owner's only
        assert key.stat().st_mode & 0o077 == 0
