"""`dciot sim run` as a real process: announces its servers, serves, exits 0 on SIGTERM;
`dciot sim fault` and `dciot sim state` talk to it."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from dciot.cli.sim import app
from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import free_port
from firmware_sims.control import get_state


def test_run_fault_state_and_clean_stop(tmp_path: Path) -> None:
    control, pole, pump = free_port(), free_port(), free_port()
    config = tmp_path / "sims.yaml"
    config.write_text(yaml.safe_dump({
        "time_scale": 60, "control": {"port": control},
        "servers": [{"port": pole, "units": [{"unit": 1, "profile": "dc-smartpole-v1"},
                                             {"unit": 2, "profile": "dc-smartpole-v1"}]},
                    {"port": pump, "units": [{"unit": 3, "profile": "dc-pumpstation-v1"}]}],
    }), encoding="utf-8")
    proc = DciotProcess("sims", ["sim", "run", str(config)], tmp_path / "sims.log")
    proc.start()
    try:
        for port in (pole, pump, control):
            wait_for_port("127.0.0.1", port, 30, proc)
        url = f"http://127.0.0.1:{control}"
        runner = CliRunner()
        result = runner.invoke(app, ["fault", "--control", url, "--port", str(pump),
                                     "--unit", "3", "force", "sump_level", "4.9"])
        assert result.exit_code == 0, result.output
        assert "sump_level=4.9*" in result.output
        assert get_state(url)["devices"][f"{pump}:3"]["values"]["sump_level"] == 4.9
        result = runner.invoke(app, ["fault", "--control", url, "--port", str(pump),
                                     "--unit", "3", "force", "nope", "1"])
        assert result.exit_code == 1 and "has no point 'nope'" in result.output
        result = runner.invoke(app, ["fault", "--control", url, "--port", str(pole),
                                     "--unit", "2", "mute"])
        assert result.exit_code == 0, result.output
        assert get_state(url)["devices"][f"{pole}:2"]["muted"] is True
        result = runner.invoke(app, ["fault", "--control", url, "--device", f"{pole}:2",
                                     "unmute"])
        assert result.exit_code == 0, result.output
        assert get_state(url)["devices"][f"{pole}:2"]["muted"] is False
        result = runner.invoke(app, ["fault", "--control", url, "--port", str(pole), "mute"])
        assert result.exit_code == 2 and "give --device, or --port and --unit" in result.output
        result = runner.invoke(app, ["state", "--control", url])
        assert result.exit_code == 0 and f"{pole}:1" in result.output
    finally:
        code = proc.stop()
    log = proc.log_path.read_text(encoding="utf-8")
    assert code == 0, log
    assert f"Modbus TCP 127.0.0.1:{pole} listening: units 1, 2 (dc-smartpole-v1)" in log
    assert f"control API http://127.0.0.1:{control} listening" in log
    assert "simulators stopped" in log


def test_bad_config_exits_2_naming_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "sims.yaml"
    config.write_text(yaml.safe_dump({"control": {"port": 1}, "servers": [
        {"port": 2, "units": [{"unit": 1, "profile": "acme-nothing-v9"}]}]}), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 2
    assert "unknown profile 'acme-nothing-v9'" in result.output
