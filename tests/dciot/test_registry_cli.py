"""`dciot gateway` and `dciot device` against a registry file, through typer's CliRunner."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from cloud_broker.security.passwords import verify_password
from cloud_broker.security.service_accounts import create_account
from dciot.cli import device, gateway
from edge_agent.config import load_gateway_config

Run = Callable[..., Result]
app = typer.Typer()
app.add_typer(gateway.app, name="gateway")
app.add_typer(device.app, name="device")

CSV_HEADER = "id,name,profile,gateway,lat,lon,install_date,host,port,unit,params\n"
CSV_GOOD = [
    "pole-001,东昌路1号灯杆,dc-smartpole-v1,gw-a,36.451,115.981,2025-03-01,10.0.0.5,502,1,\n",
    "pole-002,东昌路2号灯杆,dc-smartpole-v1,gw-a,36.452,115.982,2025-03-01,10.0.0.5,502,2,\n",
    'wm-001,1号水表,dc-watermeter-cjt188-v1,gw-b,36.46,115.99,,,,,'
    '"{""serial_port"": ""/dev/ttyUSB0"", ""address"": ""12345678901234""}"\n',
]
CSV_BAD = [
    ("pole-003,x,dc-smartpole-v1,gw-a,40.1,115.98,,10.0.0.5,502,3,\n",
     "line 5 (pole-003): location 40.1, 115.98 is outside the district"),
    ("pole-004,x,no-such-profile,gw-a,36.45,115.98,,10.0.0.5,502,4,\n",
     "line 6 (pole-004): unknown profile 'no-such-profile'"),
    ("pole-005,x,dc-smartpole-v1,gw-nope,36.45,115.98,,10.0.0.5,502,5,\n",
     "line 7 (pole-005): unknown gateway 'gw-nope'"),
]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`run(*args)`: invoke the CLI on a registry in tmp_path (via DCIOT_REGISTRY)."""
    monkeypatch.setenv("DCIOT_REGISTRY", str(tmp_path / "registry.sqlite"))

    def invoke(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(app, list(args), terminal_width=200)
        assert result.exit_code == code, result.output
        return result
    return invoke


def _password(output: str) -> str:
    """The line after "... (shown once; ...):"."""
    lines = output.splitlines()
    (at,) = [i for i, line in enumerate(lines) if "shown once" in line]
    return lines[at + 1]


def _add_gateway(run: Run, gateway_id: str, lon: str = "115.98") -> str:
    result = run("gateway", "add", gateway_id, "--site", "东昌路", "--town", "古楼街道",
                 "--lat", "36.45", "--lon", lon)
    return _password(result.stdout)


def _hashes(path: Path) -> dict[str, str | None]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT id, password_hash FROM gateways").fetchall())


def test_password_is_shown_once_and_only_its_hash_stored(run: Run, tmp_path: Path) -> None:
    password = _add_gateway(run, "gw-a")
    assert len(password) >= 16
    path = tmp_path / "registry.sqlite"
    assert password.encode() not in path.read_bytes()
    stored = _hashes(path)["gw-a"]
    assert stored is not None and stored.startswith("$7$") and verify_password(password, stored)
    listing = run("gateway", "list").output + run("gateway", "show", "gw-a", "--json").output
    assert password not in listing and stored not in listing
    assert json.loads(run("gateway", "show", "gw-a", "--json").stdout)["has_password"] is True


def test_rotate_replaces_the_hash_and_revoke_clears_it(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    old = _add_gateway(run, "gw-a")
    old_hash = _hashes(path)["gw-a"]
    result = run("gateway", "rotate-credentials", "gw-a")
    new = _password(result.stdout)
    assert new != old and result.output.count(new) == 1
    new_hash = _hashes(path)["gw-a"]
    assert new_hash != old_hash and new_hash is not None and verify_password(new, new_hash)
    assert not verify_password(old, new_hash)
    run("gateway", "revoke", "gw-a")
    assert _hashes(path)["gw-a"] is None
    shown = json.loads(run("gateway", "show", "gw-a", "--json").stdout)
    assert (shown["status"], shown["has_password"]) == ("revoked", False)
    assert "is revoked" in run("gateway", "rotate-credentials", "gw-a", code=1).output


def test_gateway_outside_the_district_is_refused(run: Run) -> None:
    result = run("gateway", "add", "gw-x", "--site", "s", "--town", "t", "--lat", "36.45",
                 "--lon", "117.0", code=1)
    assert "outside the district" in result.output


def test_import_without_skip_invalid_imports_nothing(run: Run, tmp_path: Path) -> None:
    _add_gateway(run, "gw-a")
    _add_gateway(run, "gw-b")
    csv = tmp_path / "devices.csv"
    csv.write_text(CSV_HEADER + "".join(CSV_GOOD + [row for row, _ in CSV_BAD]), "utf-8")
    result = run("device", "import", str(csv), code=1)
    for _, line in CSV_BAD:
        assert line in result.stderr
    assert "3 of 6 rows are invalid; nothing imported" in result.stderr
    assert json.loads(run("device", "list", "--json").stdout) == []
    result = run("device", "import", str(csv), "--skip-invalid")
    for _, line in CSV_BAD:
        assert line in result.stderr
    assert "imported 3 of 6 devices, 3 invalid rows skipped" in result.stdout
    listed = json.loads(run("device", "list", "--json").stdout)
    assert [d["id"] for d in listed] == ["pole-001", "pole-002", "wm-001"]


def test_gateway_config_loads_and_lists_its_devices_only(run: Run, tmp_path: Path) -> None:
    _add_gateway(run, "gw-a")
    _add_gateway(run, "gw-b")
    csv = tmp_path / "devices.csv"
    csv.write_text(CSV_HEADER + "".join(CSV_GOOD), "utf-8")
    run("device", "import", str(csv))
    run("device", "decommission", "pole-002")
    out = tmp_path / "gw-a.yaml"
    run("gateway", "config", "gw-a", "--out", str(out), "--broker-host", "mqtt.example",
        "--broker-port", "8883")
    config, _ = load_gateway_config(out)
    assert config.gateway_id == "gw-a" and config.site == "东昌路"
    assert (config.broker.host, config.broker.port, config.broker.username) == (
        "mqtt.example", 8883, "gw-a")
    assert config.broker.password_env == "DCIOT_BROKER_PASSWORD"
    (pole,) = config.devices
    assert (pole.id, pole.host, pole.port, pole.unit) == ("pole-001", "10.0.0.5", 502, 1)
    meter_yaml = tmp_path / "gw-b.yaml"
    meter_yaml.write_text(run("gateway", "config", "gw-b").stdout, "utf-8")
    config_b, _ = load_gateway_config(meter_yaml)
    assert [(d.id, d.params["address"]) for d in config_b.devices] == [
        ("wm-001", "12345678901234")]


def test_device_add_show_update_move_decommission(run: Run) -> None:
    _add_gateway(run, "gw-a")
    _add_gateway(run, "gw-b")
    run("device", "add", "pole-001", "--profile", "dc-smartpole-v1", "--gateway", "gw-a",
        "--lat", "36.45", "--lon", "115.98", "--host", "10.0.0.5", "--port", "502",
        "--unit", "1")
    bad = run("device", "add", "pole-002", "--profile", "dc-smartpole-v1", "--gateway", "gw-a",
              "--lat", "36.45", "--lon", "115.98", "--params", '{"a": 1}', code=1)
    assert "modbus_tcp needs host" in bad.output and "not params" in bad.output
    run("device", "update", "pole-001", "--name", "东昌路1号灯杆", "--unit", "7")
    shown = json.loads(run("device", "show", "pole-001", "--json").stdout)
    assert (shown["name"], shown["unit"], shown["gateway"]) == ("东昌路1号灯杆", 7, "gw-a")
    assert "unit is not 0-255" not in run("device", "show", "pole-001").output
    run("device", "move", "pole-001", "--to", "gw-b")
    assert json.loads(run("device", "show", "pole-001", "--json").stdout)["gateway"] == "gw-b"
    run("gateway", "revoke", "gw-a")
    assert "is revoked" in run("device", "move", "pole-001", "--to", "gw-a", code=1).output
    run("device", "decommission", "pole-001")
    assert json.loads(run("device", "list", "--json").stdout) == []
    assert len(json.loads(run("device", "list", "--all", "--json").stdout)) == 1
    assert "no device 'nope'" in run("device", "show", "nope", code=1).output


def test_broker_dir_regenerates_the_broker_files(run: Run, tmp_path: Path) -> None:
    broker = tmp_path / "broker"
    accounts = tmp_path / "service_accounts.yaml"
    missing = run("gateway", "add", "gw-a", "--site", "s", "--town", "t", "--lat", "36.45",
                  "--lon", "115.98", "--broker-dir", str(broker), code=2)
    assert "would lock the ingest out" in missing.output
    assert json.loads(run("gateway", "list", "--json").stdout) == []
    create_account(accounts, "ingest", "ingest")
    password = run("gateway", "add", "gw-a", "--site", "s", "--town", "t", "--lat", "36.45",
                   "--lon", "115.98", "--broker-dir", str(broker), "--service-accounts",
                   str(accounts)).stdout
    password = _password(password)
    lines = dict(line.split(":", 1) for line in
                 (broker / "passwords").read_text("utf-8").splitlines())
    assert set(lines) == {"gw-a", "ingest"} and verify_password(password, lines["gw-a"])
    assert "dc/v1/gw/gw-a/#" in (broker / "acl").read_text("utf-8")
    run("gateway", "revoke", "gw-a", "--broker-dir", str(broker), "--service-accounts",
        str(accounts))
    assert "gw-a" not in (broker / "passwords").read_text("utf-8")
