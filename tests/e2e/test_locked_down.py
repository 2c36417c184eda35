"""The pipeline on a locked-down broker: the gateway authenticates over TLS with a client
certificate from our CA, the ingest with its own least-privilege password account; readings
land, and no password or private key appears in any log of the run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from cloud_broker.app import run_cloud
from cloud_broker.config import CloudConfig
from cloud_broker.metrics import CloudMetrics
from cloud_broker.security.broker_files import Account, Role, gateway_account, write_broker_files
from cloud_broker.security.passwords import generate_password, hash_password
from cloud_broker.security.pki import init_ca, issue_certificate
from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import InfluxServer, MosquittoServer, TlsListener, free_port

GATEWAY = "gw-secure"


def test_tls_client_certificate_gateway_and_password_ingest_without_secrets_in_logs(
        tmp_path: Path, influxd: InfluxServer, influx_db: str, poll: Callable[..., object],
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = tmp_path / "pki"
    ca = init_ca(pki)
    server = issue_certificate(pki, "broker", server=True)
    client = issue_certificate(pki, GATEWAY)
    ingest_password = generate_password()
    monkeypatch.setenv("DCIOT_TEST_INGEST_PASSWORD", ingest_password)
    password_file, acl_file = write_broker_files(
        [gateway_account(GATEWAY, None),
         Account("ingest", hash_password(ingest_password), Role.INGEST)], tmp_path / "broker")
    broker = MosquittoServer(tmp_path / "mosquitto", password_file=password_file,
                             acl_file=acl_file,
                             tls=TlsListener(ca.certfile, server.certfile, server.keyfile))
    assert broker.tls_port is not None  # ports are chosen when the server is built
    sim_port, control_port = free_port(), free_port()
    (tmp_path / "sims.yaml").write_text(yaml.safe_dump({
        "physics": False, "control": {"host": "127.0.0.1", "port": control_port},
        "servers": [{"host": "127.0.0.1", "port": sim_port, "units": [
            {"unit": 1, "profile": "dc-smartpole-v1", "initial": {"pm25": 42}}]}]}))
    (tmp_path / "edge.yaml").write_text(yaml.safe_dump({
        "gateway_id": GATEWAY,
        "broker": {"host": "127.0.0.1", "port": broker.tls_port, "tls": {
            "cafile": str(ca.certfile), "certfile": str(client.certfile),
            "keyfile": str(client.keyfile)}},
        "devices": [{"id": "pole-s1", "profile": "dc-smartpole-v1", "host": "127.0.0.1",
                     "port": sim_port, "unit": 1, "interval_s": 0.5}]}))
    config = CloudConfig.model_validate({
        "broker": {"port": broker.port, "username": "ingest",
                   "password_env": "DCIOT_TEST_INGEST_PASSWORD", "client_id": "ingest-secure"},
        "influx": {"url": influxd.url, "database": influx_db},
        "devices": [{"id": "pole-s1", "gateway": GATEWAY, "profile": "dc-smartpole-v1"}]})
    sim = DciotProcess("sim", ["sim", "run", str(tmp_path / "sims.yaml")], tmp_path / "sim.log")
    edge = DciotProcess("edge", ["edge", "run", str(tmp_path / "edge.yaml")],
                        tmp_path / "edge.log")
    stop = threading.Event()
    caplog.set_level(logging.DEBUG)
    try:
        broker.start()
        cloud = threading.Thread(target=run_cloud, args=(config, stop, CloudMetrics()),
                                 daemon=True)
        cloud.start()
        sim.start()
        wait_for_port("127.0.0.1", control_port, 30, sim)
        edge.start()

        def landed() -> int:
            result = influxd.query("SELECT count(pm25) FROM smart_pole", db=influx_db)
            series = result["results"][0].get("series", [])
            return int(series[0]["values"][0][1]) if series else 0

        poll(lambda: landed() >= 3, 30, what="readings over TLS through the locked-down broker")
        row = influxd.query("SELECT last(pm25) FROM smart_pole", db=influx_db)
        assert row["results"][0]["series"][0]["values"][0][1] == 42
    finally:
        edge.stop()
        sim.stop()
        stop.set()
        broker.stop()
    secrets = [ingest_password, client.keyfile.read_text().splitlines()[1],
               ca.keyfile.read_text().splitlines()[1]]
    logs = caplog.text + "".join(p.read_text(errors="replace") for p in
                                 [tmp_path / "edge.log", tmp_path / "sim.log",
                                  *(tmp_path / "mosquitto").glob("*.log")])
    assert "pole-s1" in logs or "gw-secure" in logs  # the logs are there and not empty
    for secret in secrets:
        assert secret not in logs
