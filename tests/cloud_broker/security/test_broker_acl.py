"""ACLs, logins, revocation and rotation on a real, locked-down mosquitto."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker.security.broker_files import gateway_account, write_broker_files
from cloud_broker.security.passwords import hash_password
from dciot.runtime import MosquittoServer

NOT_AUTHORIZED = 135  # paho's reason code for CONNACK rc 5 (MQTT 3.1.1 "not authorized")

Connect = Callable[..., Any]


def _admin(broker: MosquittoServer, mqtt_connect: Connect, passwords: dict[str, str],
           topic: str) -> Any:
    admin = mqtt_connect(broker.host, broker.port, "admin", passwords["admin"])
    assert admin.connected.is_set(), admin.reason
    admin.subscribe(topic)
    return admin


def test_gateway_cannot_publish_into_another_gateways_subtree(
        locked_broker: MosquittoServer, mqtt_connect: Connect, passwords: dict[str, str],
        poll: Callable[..., object]) -> None:
    admin = _admin(locked_broker, mqtt_connect, passwords, "dc/v1/gw/#")
    gw_a = mqtt_connect(locked_broker.host, locked_broker.port, "gw-a", passwords["gw-a"])
    assert gw_a.connected.is_set(), gw_a.reason

    gw_a.publish("dc/v1/gw/gw-b/readings/spoofed", b"spoof")
    gw_a.publish("dc/v1/alarms/events/critical/fire/x/y", b"spoof")
    gw_a.publish("dc/v1/gw/gw-a/readings/marker", b"marker")

    poll(lambda: "dc/v1/gw/gw-a/readings/marker" in admin.topics(), timeout_s=10,
         what="gw-a's own message")
    assert admin.topics() == ["dc/v1/gw/gw-a/readings/marker"]


def test_gateway_cannot_read_another_gateways_commands(
        locked_broker: MosquittoServer, mqtt_connect: Connect, passwords: dict[str, str],
        poll: Callable[..., object]) -> None:
    gw_a = mqtt_connect(locked_broker.host, locked_broker.port, "gw-a", passwords["gw-a"])
    gw_a.subscribe("dc/v1/gw/+/cmd/#")
    admin = mqtt_connect(locked_broker.host, locked_broker.port, "admin", passwords["admin"])
    admin.publish("dc/v1/gw/gw-b/cmd/switch", b"for b")
    admin.publish("dc/v1/gw/gw-a/cmd/switch", b"for a")
    gw_a_direct = mqtt_connect(locked_broker.host, locked_broker.port, "gw-a", passwords["gw-a"])
    gw_a_direct.subscribe("dc/v1/gw/gw-a/cmd/#")
    admin.publish("dc/v1/gw/gw-b/cmd/switch", b"for b")
    admin.publish("dc/v1/gw/gw-a/cmd/switch", b"for a")
    poll(lambda: gw_a_direct.messages, timeout_s=10, what="gw-a's own command")
    assert gw_a_direct.messages == [("dc/v1/gw/gw-a/cmd/switch", b"for a")]
    # The wildcard subscription is not covered by gw-a's ACL, so it delivers nothing at all.
    assert all(topic.startswith("dc/v1/gw/gw-a/") for topic in gw_a.topics())


def test_wrong_password_and_unknown_user_and_anonymous_are_refused(
        locked_broker: MosquittoServer, mqtt_connect: Connect, passwords: dict[str, str]) -> None:
    wrong = mqtt_connect(locked_broker.host, locked_broker.port, "gw-a", passwords["gw-b"])
    unknown = mqtt_connect(locked_broker.host, locked_broker.port, "gw-x", "whatever-1234567")
    anonymous = mqtt_connect(locked_broker.host, locked_broker.port)
    for client in (wrong, unknown, anonymous):
        assert not client.connected.is_set()
        assert client.reason is not None and client.reason.value == NOT_AUTHORIZED


def test_read_only_alarm_consumer_cannot_publish(
        locked_broker: MosquittoServer, mqtt_connect: Connect, passwords: dict[str, str],
        poll: Callable[..., object]) -> None:
    admin = _admin(locked_broker, mqtt_connect, passwords, "dc/v1/#")
    reader = mqtt_connect(locked_broker.host, locked_broker.port, "reader", passwords["reader"])
    reader.subscribe("dc/v1/alarms/#")
    reader.publish("dc/v1/alarms/active/critical/fire/d1/r1", b"forged")
    reader.publish("dc/v1/cmd/alarms/ack", b"forged ack")
    # The broker acknowledged (and dropped) both before this marker was published.
    admin.publish("dc/v1/alarms/events/minor/fire/d1/marker", b"marker")
    poll(lambda: "dc/v1/alarms/events/minor/fire/d1/marker" in reader.topics(),
         timeout_s=10, what="the marker at the reader")
    assert admin.topics() == ["dc/v1/alarms/events/minor/fire/d1/marker"]
    assert reader.topics() == ["dc/v1/alarms/events/minor/fire/d1/marker"]


def test_revoked_gateway_is_refused_after_reload_while_others_stay_connected(
        locked_broker: MosquittoServer, broker_dir: Path, mqtt_connect: Connect,
        passwords: dict[str, str], make_accounts: Callable[..., Any],
        poll: Callable[..., object]) -> None:
    admin = _admin(locked_broker, mqtt_connect, passwords, "dc/v1/gw/#")
    gw_b = mqtt_connect(locked_broker.host, locked_broker.port, "gw-b", passwords["gw-b"])
    assert gw_b.connected.is_set()

    remaining = {k: v for k, v in passwords.items() if k != "gw-b"}
    write_broker_files(make_accounts(remaining), broker_dir)
    locked_broker.reload()

    def refused() -> bool:
        probe = mqtt_connect(locked_broker.host, locked_broker.port, "gw-b", passwords["gw-b"])
        return probe.reason is not None and probe.reason.value == NOT_AUTHORIZED

    poll(refused, timeout_s=10, what="gw-b refused after SIGHUP")
    # mosquitto 2.0 also drops the revoked gateway's open connection on reload.
    poll(gw_b.disconnected.is_set, timeout_s=10, what="gw-b's open session dropped")
    assert not admin.disconnected.is_set()
    gw_a = mqtt_connect(locked_broker.host, locked_broker.port, "gw-a", passwords["gw-a"])
    gw_a.publish("dc/v1/gw/gw-a/status", b"after reload")
    poll(lambda: admin.topics() == ["dc/v1/gw/gw-a/status"], timeout_s=10,
         what="the admin, connected across the reload, still receiving")
    assert not admin.disconnected.is_set()


def test_rotated_password_works_and_the_old_one_does_not(
        locked_broker: MosquittoServer, broker_dir: Path, mqtt_connect: Connect,
        passwords: dict[str, str], make_accounts: Callable[..., Any],
        poll: Callable[..., object]) -> None:
    new_password = "gw-a-rotated-0123456789"
    others = make_accounts({k: v for k, v in passwords.items() if k != "gw-a"})
    write_broker_files([*others, gateway_account("gw-a", hash_password(new_password))],
                       broker_dir)
    locked_broker.reload()

    def new_accepted() -> bool:
        probe = mqtt_connect(locked_broker.host, locked_broker.port, "gw-a", new_password)
        return probe.connected.is_set()

    poll(new_accepted, timeout_s=10, what="the rotated password accepted")
    old = mqtt_connect(locked_broker.host, locked_broker.port, "gw-a", passwords["gw-a"])
    assert old.reason is not None and old.reason.value == NOT_AUTHORIZED


def test_non_ascii_password_hash_is_accepted_by_mosquitto(
        tmp_path: Path, mqtt_connect: Connect, passwords: dict[str, str],
        make_accounts: Callable[..., Any]) -> None:
    secret = "东昌-密码-Grüße-пароль"
    password_file, acl_file = write_broker_files(
        [*make_accounts(passwords), gateway_account("gw-zh", hash_password(secret))],
        tmp_path / "files")
    with MosquittoServer(tmp_path / "m", password_file=password_file,
                         acl_file=acl_file) as broker:
        ok = mqtt_connect(broker.host, broker.port, "gw-zh", secret)
        assert ok.connected.is_set(), ok.reason
        bad = mqtt_connect(broker.host, broker.port, "gw-zh", secret[:-1])
        assert bad.reason is not None and bad.reason.value == NOT_AUTHORIZED
