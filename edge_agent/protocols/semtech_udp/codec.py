"""Semtech packet-forwarder UDP protocol ("GWMP"): datagrams <-> typed packets. Pure.

Lora-net/packet_forwarder PROTOCOL.TXT, protocol version 2 (version 1 is accepted too; its
packets have the same layout). Every datagram starts with a 4-byte header:

    byte 0      protocol version (2)
    bytes 1-2   random token (echoed in the acknowledgement)
    byte 3      identifier
    ┌────────────┬──────┬────────────┬──────────────────┬───────────────────────────────┐
    │ identifier │ code │ direction  │ bytes 4-11       │ bytes 12-end                  │
    ├────────────┼──────┼────────────┼──────────────────┼───────────────────────────────┤
    │ PUSH_DATA  │ 0x00 │ gw -> srv  │ gateway EUI      │ JSON {"rxpk":[...],"stat":{}} │
    │ PUSH_ACK   │ 0x01 │ srv -> gw  │ -                │ -                             │
    │ PULL_DATA  │ 0x02 │ gw -> srv  │ gateway EUI      │ -                             │
    │ PULL_RESP  │ 0x03 │ srv -> gw  │ JSON {"txpk":{}} (from byte 4)                   │
    │ PULL_ACK   │ 0x04 │ srv -> gw  │ -                │ -                             │
    │ TX_ACK     │ 0x05 │ gw -> srv  │ gateway EUI      │ optional JSON {"txpk_ack":{}} │
    └────────────┴──────┴────────────┴──────────────────┴───────────────────────────────┘

A UDP datagram is one whole packet, so there is no stream to resynchronise: each datagram
decodes to one packet or raises `DatagramError` naming the offset and a metric label.

`rxpk` entries (section 4) carry one radio packet each: `data` (base64 PHYPayload), `size`,
`stat` (CRC 1 ok, -1 fail, 0 none), `tmst` (gateway µs counter), `time` (UTC, only with a time
source), `freq` (MHz), `rssi` (dBm), `lsnr` (dB), `modu`, `datr`, `codr`, `chan`, `rfch`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from edge_agent.errors import RejectedFrame

VERSIONS = frozenset({1, 2})
HEADER_BYTES = 4
EUI_END = 12


class Identifier(IntEnum):
    push_data = 0x00
    push_ack = 0x01
    pull_data = 0x02
    pull_resp = 0x03
    pull_ack = 0x04
    tx_ack = 0x05


class DatagramError(RejectedFrame):
    """A datagram or rxpk entry that cannot be decoded; `reason` is a metric label."""


@dataclass(frozen=True)
class PushData:
    version: int
    token: int
    gateway: str
    rxpk: tuple[Any, ...]
    stat: dict[str, Any] | None = None


@dataclass(frozen=True)
class PullData:
    version: int
    token: int
    gateway: str


@dataclass(frozen=True)
class TxAck:
    version: int
    token: int
    gateway: str
    error: str | None = None


@dataclass(frozen=True)
class Ack:
    """PUSH_ACK or PULL_ACK."""

    version: int
    token: int
    identifier: Identifier


@dataclass(frozen=True)
class PullResp:
    version: int
    token: int
    txpk: dict[str, Any]


Packet = PushData | PullData | TxAck | Ack | PullResp


@dataclass(frozen=True)
class RxPacket:
    """One received radio packet with its metadata."""

    data: bytes
    tmst: int | None = None
    time_ms: int | None = None
    freq: float | None = None
    rssi: int | None = None
    lsnr: float | None = None
    stat: int = 1
    modu: str = "LORA"
    datr: str | int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _json_object(data: bytes, offset: int) -> dict[str, Any]:
    try:
        value = json.loads(data[offset:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DatagramError("bad_json", offset, str(err)[:80]) from err
    if not isinstance(value, dict):
        raise DatagramError("bad_json", offset, "the JSON payload is not an object")
    return value


def _member(body: dict[str, Any], name: str, offset: int) -> dict[str, Any]:
    value = body.get(name, {})
    if not isinstance(value, dict):
        raise DatagramError("bad_json", offset, f"{name} is not an object")
    return value


def _header(data: bytes) -> tuple[int, int, Identifier]:
    if len(data) < HEADER_BYTES:
        raise DatagramError("truncated", len(data), f"{len(data)} bytes, the header has 4")
    if data[0] not in VERSIONS:
        raise DatagramError("bad_version", 0, f"protocol version {data[0]}")
    try:
        identifier = Identifier(data[3])
    except ValueError as err:
        raise DatagramError("unknown_identifier", 3, f"identifier 0x{data[3]:02x}") from err
    return data[0], int.from_bytes(data[1:3], "big"), identifier


def _gateway(data: bytes) -> str:
    if len(data) < EUI_END:
        raise DatagramError("truncated", len(data), "the gateway EUI needs bytes 4-11")
    return data[HEADER_BYTES:EUI_END].hex()


def decode_datagram(data: bytes) -> Packet:
    """Decode one datagram; raise DatagramError."""
    version, token, identifier = _header(data)
    if identifier in {Identifier.push_ack, Identifier.pull_ack}:
        return Ack(version, token, identifier)
    if identifier == Identifier.pull_resp:
        return PullResp(version, token, _member(_json_object(data, HEADER_BYTES), "txpk",
                                                HEADER_BYTES))
    gateway = _gateway(data)
    if identifier == Identifier.pull_data:
        return PullData(version, token, gateway)
    if identifier == Identifier.tx_ack:
        if len(data) == EUI_END or not data[EUI_END:].strip(b"\x00"):
            return TxAck(version, token, gateway)
        ack = _member(_json_object(data.rstrip(b"\x00"), EUI_END), "txpk_ack", EUI_END)
        error = ack.get("error")
        return TxAck(version, token, gateway, error if isinstance(error, str) else None)
    body = _json_object(data, EUI_END)
    rxpk = body.get("rxpk", [])
    if not isinstance(rxpk, list):
        raise DatagramError("bad_json", EUI_END, "rxpk is not an array")
    stat = body.get("stat")
    return PushData(version, token, gateway, tuple(rxpk), stat if isinstance(stat, dict) else None)


def ack_for(packet: Packet) -> bytes | None:
    """The acknowledgement a server sends for a packet (PUSH_ACK / PULL_ACK), if any."""
    if isinstance(packet, PushData):
        return encode_ack(Ack(packet.version, packet.token, Identifier.push_ack))
    if isinstance(packet, PullData):
        return encode_ack(Ack(packet.version, packet.token, Identifier.pull_ack))
    return None


def _head(version: int, token: int, identifier: Identifier) -> bytes:
    return bytes([version]) + token.to_bytes(2, "big") + bytes([identifier])


def encode_ack(ack: Ack) -> bytes:
    return _head(ack.version, ack.token, ack.identifier)


def encode_pull_data(packet: PullData) -> bytes:
    return _head(packet.version, packet.token, Identifier.pull_data) + bytes.fromhex(
        packet.gateway)


def encode_push_data(packet: PushData) -> bytes:
    body: dict[str, Any] = {"rxpk": list(packet.rxpk)}
    if packet.stat is not None:
        body["stat"] = packet.stat
    return (_head(packet.version, packet.token, Identifier.push_data)
            + bytes.fromhex(packet.gateway) + json.dumps(body, separators=(",", ":")).encode())


def encode_pull_resp(packet: PullResp) -> bytes:
    return (_head(packet.version, packet.token, Identifier.pull_resp)
            + json.dumps({"txpk": packet.txpk}, separators=(",", ":")).encode())


def encode_tx_ack(packet: TxAck) -> bytes:
    head = _head(packet.version, packet.token, Identifier.tx_ack) + bytes.fromhex(packet.gateway)
    if packet.error is None:
        return head
    return head + json.dumps({"txpk_ack": {"error": packet.error}}).encode()


def _b64(text: object) -> bytes:
    if not isinstance(text, str):
        raise DatagramError("bad_rxpk", 0, "rxpk.data is not a string")
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as err:
        raise DatagramError("bad_base64", 0, f"rxpk.data: {err}") from err


def _time_ms(text: object) -> int | None:
    """UTC reception time in epoch ms; None when absent or unreadable (it is metadata)."""
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return round(stamp.timestamp() * 1000) if stamp.tzinfo is not None else None


def _number(entry: dict[str, Any], name: str, kind: type) -> Any:
    value = entry.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            kind is int and not float(value).is_integer()):
        raise DatagramError("bad_rxpk", 0, f"rxpk.{name} is not a number: {value!r}")
    return kind(value)


def parse_rxpk(entry: object) -> RxPacket:
    """One rxpk entry -> RxPacket; raise DatagramError (bad_rxpk, bad_base64, size_mismatch)."""
    if not isinstance(entry, dict):
        raise DatagramError("bad_rxpk", 0, "an rxpk entry is not an object")
    data = _b64(entry.get("data"))
    size = _number(entry, "size", int)
    if size is not None and size != len(data):
        raise DatagramError("size_mismatch", 0, f"rxpk.size {size}, data has {len(data)} bytes")
    stat = _number(entry, "stat", int)
    known = {"data", "size", "stat", "tmst", "time", "freq", "rssi", "lsnr", "modu", "datr"}
    return RxPacket(
        data=data, tmst=_number(entry, "tmst", int), time_ms=_time_ms(entry.get("time")),
        freq=_number(entry, "freq", float), rssi=_number(entry, "rssi", int),
        lsnr=_number(entry, "lsnr", float), stat=1 if stat is None else stat,
        modu=str(entry.get("modu", "LORA")), datr=entry.get("datr"),
        extra={k: v for k, v in entry.items() if k not in known})


def encode_rxpk(packet: RxPacket, time_text: str | None = None) -> dict[str, Any]:
    """An rxpk entry as a packet forwarder writes it (simulators and tests)."""
    entry: dict[str, Any] = dict(packet.extra)
    for name in ("tmst", "freq", "rssi", "lsnr", "datr"):
        value = getattr(packet, name)
        if value is not None:
            entry[name] = value
    if time_text is not None:
        entry["time"] = time_text
    entry.update(stat=packet.stat, modu=packet.modu, size=len(packet.data),
                 data=base64.b64encode(packet.data).decode("ascii"))
    return entry
