"""Client-certificate logins on mosquitto's TLS listener."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker.security.broker_files import gateway_account, write_broker_files
from cloud_broker.security.pki import init_ca, issue_certificate
from dciot.runtime import MosquittoServer, TlsListener


def test_client_certificate_from_our_ca_connects_and_another_cas_is_refused(
        tmp_path: Path, mqtt_connect: Callable[..., Any], passwords: dict[str, str],
        make_accounts: Callable[..., Any], poll: Callable[..., object]) -> None:
    ours, theirs = tmp_path / "pki", tmp_path / "other-pki"
    ca = init_ca(ours)
    server = issue_certificate(ours, "broker", server=True)
    good = issue_certificate(ours, "gw-c")
    init_ca(theirs, common_name="Someone else's CA")
    bad = issue_certificate(theirs, "gw-c")
    assert stat.S_IMODE(good.keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE((ours / "ca.key").stat().st_mode) == 0o600

    files = write_broker_files([*make_accounts(passwords), gateway_account("gw-c", None)],
                               tmp_path / "files")
    tls = TlsListener(ca.certfile, server.certfile, server.keyfile)
    with MosquittoServer(tmp_path / "m", password_file=files[0], acl_file=files[1],
                         tls=tls) as broker:
        assert broker.tls_port is not None
        admin = mqtt_connect(broker.host, broker.port, "admin", passwords["admin"])
        admin.subscribe("dc/v1/gw/#")

        client = mqtt_connect(broker.host, broker.tls_port,
                              tls=(ca.certfile, good.certfile, good.keyfile))
        assert client.connected.is_set(), client.reason
        # CN is the username, so gw-c's ACL applies: its own subtree only.
        client.publish("dc/v1/gw/gw-a/status", b"spoof")
        client.publish("dc/v1/gw/gw-c/status", b"online")
        poll(lambda: admin.topics(), timeout_s=10, what="gw-c's message")
        assert admin.topics() == ["dc/v1/gw/gw-c/status"]

        stranger = mqtt_connect(broker.host, broker.tls_port,
                                tls=(ca.certfile, bad.certfile, bad.keyfile))
        assert not stranger.connected.is_set()
