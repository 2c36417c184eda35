"""A locked-down real mosquitto (password + ACL files from accounts) and small MQTT clients."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from cloud_broker.security.broker_files import Account, Role, gateway_account, write_broker_files
from cloud_broker.security.passwords import hash_password
from dciot.runtime import MosquittoServer, TlsListener

PASSWORDS = {"admin": "admin-pw-0123456789", "gw-a": "gw-a-pw-0123456789",
             "gw-b": "gw-b-pw-0123456789", "reader": "reader-pw-0123456789",
             "ingest": "ingest-pw-0123456789"}
ROLES = {"admin": Role.ADMIN, "reader": Role.ALARM_READER, "ingest": Role.INGEST}
TIMEOUT_S = 10.0


def accounts(passwords: dict[str, str]) -> list[Account]:
    result = []
    for user, password in passwords.items():
        if user.startswith("gw-"):
            result.append(gateway_account(user, hash_password(password)))
        else:
            result.append(Account(user, hash_password(password), ROLES[user]))
    return result


@dataclass
class Client:
    """A paho client connected (or refused) synchronously, collecting what it receives."""

    client: mqtt.Client
    reason: mqtt.ReasonCode | None = None
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    answered: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(TIMEOUT_S), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1 and wait for the PUBACK: the broker has handled (or dropped) it."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(TIMEOUT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def topics(self) -> list[str]:
        return [topic for topic, _ in list(self.messages)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(host: str, port: int, username: str | None = None, password: str | None = None,
            tls: tuple[Path, Path, Path] | None = None) -> Client:
    """Connect and wait for the CONNACK (or a TLS/connection failure: reason stays None)."""
    paho = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    holder = Client(paho)
    if username is not None:
        paho.username_pw_set(username, password)
    if tls is not None:
        cafile, certfile, keyfile = tls
        paho.tls_set(ca_certs=str(cafile), certfile=str(certfile), keyfile=str(keyfile),
                     tls_version=ssl.PROTOCOL_TLS_CLIENT)

    def on_connect(_c: object, _u: object, _f: object, reason: mqtt.ReasonCode,
                   _p: object) -> None:
        holder.reason = reason
        if not reason.is_failure:
            holder.connected.set()
        holder.answered.set()

    def on_disconnect(*_: object) -> None:
        holder.disconnected.set()
        holder.answered.set()

    paho.on_connect = on_connect
    paho.on_disconnect = on_disconnect
    paho.on_message = lambda _c, _u, msg: holder.messages.append((msg.topic, msg.payload))
    paho.reconnect_delay_set(60, 120)
    try:
        paho.connect(host, port, keepalive=30)
    except (OSError, ssl.SSLError):
        holder.answered.set()
        return holder
    paho.loop_start()
    assert holder.answered.wait(TIMEOUT_S), "no CONNACK"
    return holder


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    return tmp_path / "broker-files"


@pytest.fixture
def locked_broker(tmp_path: Path, broker_dir: Path,
                  passwords: dict[str, str]) -> Iterator[MosquittoServer]:
    password_file, acl_file = write_broker_files(accounts(passwords), broker_dir)
    server = MosquittoServer(tmp_path / "mosquitto", password_file=password_file,
                             acl_file=acl_file)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mqtt_connect() -> Iterator[Callable[..., Client]]:
    """`mqtt_connect(host, port, username, password, tls=(ca, cert, key))`, closed after."""
    opened: list[Client] = []

    def _connect(*args: Any, **kwargs: Any) -> Client:
        client = connect(*args, **kwargs)
        opened.append(client)
        return client

    yield _connect
    for client in opened:
        client.close()


@pytest.fixture
def passwords() -> dict[str, str]:
    return dict(PASSWORDS)


@pytest.fixture
def make_accounts() -> Callable[[dict[str, str]], list[Account]]:
    return accounts


@pytest.fixture
def tls_listener() -> type[TlsListener]:
    return TlsListener
