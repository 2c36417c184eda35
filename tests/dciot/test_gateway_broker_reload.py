"""Registry changes reach a running, locked-down mosquitto: files regenerated, SIGHUP sent; a
new gateway logs in, a revoked one is refused, other clients stay connected."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from cloud_broker.security.service_accounts import create_account
from dciot.cli.main import app
from dciot.runtime import MosquittoServer


def _login(port: int, username: str, password: str) -> bool:
    """True when the broker accepts the login (CONNACK success)."""
    result: list[bool] = []
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        result.append(not reason.is_failure)  # type: ignore[attr-defined]
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        done.wait(10)
        return bool(result and result[0])
    finally:
        client.loop_stop()
        client.disconnect()


def _add(runner: CliRunner, args: list[str], gateway: str, lat: str) -> str:
    result = runner.invoke(app, ["gateway", "add", gateway, "--site", "东昌路", "--town",
                                 "古楼街道", "--lat", lat, "--lon", "115.98", *args])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    shown = next(i for i, line in enumerate(lines) if "shown once" in line)
    return lines[shown + 1].strip()  # the password, printed once, after its heading


def test_add_and_revoke_reload_a_running_broker(tmp_path: Path,
                                                poll: Callable[..., object]) -> None:
    runner = CliRunner()
    broker_dir, pid_file = tmp_path / "broker", tmp_path / "mosquitto.pid"
    common = ["--registry", str(tmp_path / "registry.sqlite"), "--broker-dir", str(broker_dir)]
    broker_dir.mkdir()
    admin_password = create_account(broker_dir / "service_accounts.yaml", "ops", "admin")
    gw_a = _add(runner, common, "gw-a", "36.45")
    broker = MosquittoServer(tmp_path / "mosquitto", password_file=broker_dir / "passwords",
                             acl_file=broker_dir / "acl")
    broker.start()
    try:
        assert broker.pid is not None
        pid_file.write_text(f"{broker.pid}\n")
        reload_args = [*common, "--broker-pid-file", str(pid_file)]
        assert _login(broker.port, "gw-a", gw_a)
        assert not _login(broker.port, "gw-a", "wrong-password")
        gw_b = _add(runner, reload_args, "gw-b", "36.46")
        poll(lambda: _login(broker.port, "gw-b", gw_b), 10, what="gw-b after the reload")
        revoked = runner.invoke(app, ["gateway", "revoke", "gw-a", *reload_args])
        assert revoked.exit_code == 0, revoked.output
        poll(lambda: not _login(broker.port, "gw-a", gw_a), 10, what="gw-a refused")
        assert _login(broker.port, "ops", admin_password)  # the services were kept
        assert broker.running  # reloaded, not restarted
    finally:
        broker.stop()
