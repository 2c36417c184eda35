"""`dciot demo` end to end, as a user runs it: non-interactive, with a summary file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_district_and_raises_and_clears_alarms(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    result = subprocess.run(
        [sys.executable, "-m", "dciot", "demo", "--duration", "25", "--run-dir",
         str(tmp_path / "run"), "--summary-json", str(summary_path)],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["devices_known"] == 22
    assert summary["devices_online"] == 22
    assert summary["gateways_online"] == 4
    assert summary["alarms_raised"] >= 2 and summary["alarms_cleared"] >= 2
    assert summary["rejected"] == 0
    assert summary["influx_url"].startswith("http://127.0.0.1:")
    assert summary["influx_db"] == "dciot"
    landed = summary["series_counts"]["smart_pole"] + summary["series_counts"]["pump_station"]
    assert landed >= summary["points_written"] > 22 * 10
    assert "注入故障" in result.stdout
