"""Password hashes (mosquitto_passwd's format), ACL text, file modes, service accounts."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from cloud_broker.security.broker_files import (
    Account,
    BrokerFilesError,
    Role,
    gateway_account,
    regenerate,
    render_acl_file,
)
from cloud_broker.security.passwords import generate_password, hash_password, verify_password
from cloud_broker.security.service_accounts import (
    create_account,
    load_service_accounts,
    rotate_password,
)
from dciot.runtime import find_binary


@pytest.mark.parametrize("password", ["pass", "东昌-密码-Grüße", "with:colon and space"])
def test_verify_accepts_mosquitto_passwd_hashes(tmp_path: Path, password: str) -> None:
    tool = find_binary("mosquitto_passwd", "mosquitto")
    subprocess.run([tool, "-c", "-b", str(tmp_path / "pw"), "u", password], check=True)
    hashed = (tmp_path / "pw").read_text(encoding="utf-8").strip().split(":", 1)[1]
    assert verify_password(password, hashed)
    assert not verify_password(password + "x", hashed)


def test_hash_format_matches_mosquitto_passwd() -> None:
    hashed = hash_password("pass", salt=bytes(12))
    _, kind, iterations, salt, digest = hashed.split("$")
    assert (kind, iterations, len(salt), len(digest)) == ("7", "101", 16, 88)
    assert verify_password("pass", hashed)
    assert not verify_password("pass", "$7$101$garbage$")


def test_generated_passwords_are_url_safe_and_distinct() -> None:
    a, b = generate_password(), generate_password(32)
    assert len(a) == 24 and len(b) == 32 and a != b
    assert all(c.isalnum() or c in "-_" for c in a + b)


def test_acl_text_confines_each_gateway_to_its_subtree() -> None:
    text = render_acl_file([gateway_account("gw-a", None),
                            Account("ops", None, Role.OPERATOR)])
    assert "user gw-a\ntopic write dc/v1/gw/gw-a/#\ntopic read dc/v1/gw/gw-a/cmd/#\n" in text
    assert "topic write dc/v1/cmd/alarms/ack\n" in text
    assert text.split("\n\n")[0].startswith("#")  # nothing for anonymous clients


@pytest.mark.parametrize("bad", [
    lambda: Account("a b", None, Role.ADMIN),
    lambda: Account("gw", None, Role.GATEWAY),
    lambda: Account("ops", "plain", Role.OPERATOR),
    lambda: Account("ops", None, Role.OPERATOR, gateway_id="gw-a"),
], ids=["space-in-name", "gateway-without-id", "not-a-hash", "service-with-gateway"])
def test_bad_accounts_are_rejected(bad: object) -> None:
    with pytest.raises(BrokerFilesError):
        bad()  # type: ignore[operator]


def test_regenerate_writes_0600_files_and_refuses_duplicates(tmp_path: Path) -> None:
    pw_file, acl_file = regenerate([("gw-a", hash_password("x" * 16)), ("gw-c", None)],
                                   [Account("ops", hash_password("y" * 16), Role.OPERATOR)],
                                   tmp_path / "f")
    for path in (pw_file, acl_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [line.split(":")[0] for line in pw_file.read_text().splitlines()] == ["gw-a", "ops"]
    assert "user gw-c" in acl_file.read_text()
    with pytest.raises(BrokerFilesError, match="duplicate"):
        regenerate([("gw-a", None), ("gw-a", None)], [], tmp_path / "g")


def test_service_accounts_store_hashes_only(tmp_path: Path) -> None:
    path = tmp_path / "service_accounts.yaml"
    first = create_account(path, "ingest", "ingest")
    second = rotate_password(path, "ingest")
    text = path.read_text()
    assert first not in text and second not in text
    [account] = load_service_accounts(path)
    assert account.password_hash is not None and verify_password(second, account.password_hash)
    assert not verify_password(first, account.password_hash)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_regenerate_from_registry_leaves_revoked_gateways_out(tmp_path: Path) -> None:
    from cloud_broker.registry.store import Gateway, Registry
    from cloud_broker.security.broker_files import regenerate_from_registry

    with Registry(tmp_path / "registry.db") as registry:
        for gw in ("gw-a", "gw-b"):
            registry.add_gateway(Gateway(gw, "site", "town", 36.0, 115.0,
                                         password_hash=hash_password(f"{gw}-password-123")))
        registry.revoke_gateway("gw-b")
        pw_file, acl_file = regenerate_from_registry(registry, tmp_path / "f", [])
    assert pw_file.read_text().startswith("gw-a:$7$101$")
    assert "gw-b" not in pw_file.read_text() + acl_file.read_text()
