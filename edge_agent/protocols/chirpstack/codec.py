"""ChirpStack v4 MQTT integration: uplink events (`up`) -> typed events. Pure.

ChirpStack publishes every event of a device on
`application/{application_id}/device/{dev_eui}/event/{event}` as JSON in the Protocol Buffers
JSON mapping of `integration.UplinkEvent` (chirpstack-docs, src/chirpstack/integrations/
events.md and mqtt.md). The fields used here:

    deduplicationId      UUID of the deduplicated uplink (a redelivered message repeats it)
    time                 when ChirpStack handled it (RFC 3339, nanoseconds)
    deviceInfo.devEui    the device, 16 hex digits
    devAddr, fCnt, fPort frame fields (proto3 JSON leaves out zero values: fCnt 0, fPort 0)
    data                 FRMPayload, base64, already decrypted by ChirpStack
    rxInfo[]             one per gateway; gwTime (v4.4+) or time: the gateway's reception time

The payload is decoded by the profile's byte layout with semtech_udp/payload.py, like uplinks
received from gateways directly.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_agent.errors import RejectedFrame

DEV_EUI = re.compile(r"^[0-9a-fA-F]{16}$")


class EventError(RejectedFrame):
    """An event that cannot be used; `reason` is a metric label, `offset` the byte in the
    message where the problem was found (0 when it is a field of a valid JSON document)."""


@dataclass(frozen=True)
class UplinkEvent:
    dev_eui: str
    fcnt: int
    fport: int
    data: bytes
    deduplication_id: str | None = None
    time_ms: int | None = None
    gateway_time_ms: int | None = None
    dev_addr: str | None = None

    def reading_time_ms(self, max_skew_ms: float) -> int | None:
        """The gateway's reception time when it agrees with ChirpStack's clock within
        `max_skew_ms` (or ChirpStack gives none), else ChirpStack's time, else None."""
        gw, ns = self.gateway_time_ms, self.time_ms
        if gw is not None and (ns is None or abs(gw - ns) <= max_skew_ms):
            return gw
        return ns


def parse_time_ms(text: object) -> int | None:
    """RFC 3339 text -> epoch ms; None when absent, unreadable or without a UTC offset."""
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return round(stamp.timestamp() * 1000) if stamp.tzinfo is not None else None


def topic_dev_eui(topic: str) -> str | None:
    """The DevEUI in a default-format event topic, else None."""
    parts = topic.split("/")
    if len(parts) == 6 and parts[0] == "application" and parts[2] == "device":
        return parts[3].lower()
    return None


def _int_field(body: dict[str, Any], name: str, limit: int) -> int:
    value = body.get(name, 0)
    if isinstance(value, str) and value.isdigit():  # proto3 JSON may quote integers
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise EventError("bad_event", 0, f"{name} is not an integer 0..{limit}: {value!r}")
    return value


def _gateway_time_ms(rx_info: object) -> int | None:
    if not isinstance(rx_info, list):
        return None
    times = [parse_time_ms(rx.get("gwTime", rx.get("time"))) for rx in rx_info
             if isinstance(rx, dict)]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _data(body: dict[str, Any]) -> bytes:
    text = body.get("data", "")
    if not isinstance(text, str):
        raise EventError("bad_event", 0, "data is not a string")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        raise EventError("bad_base64", 0, f"data: {err}") from err


def _object(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise EventError("bad_json", getattr(err, "pos", 0) or 0, str(err)[:80]) from err
    if not isinstance(body, dict):
        raise EventError("bad_json", 0, "the event is not a JSON object")
    return body


def decode_uplink_event(payload: bytes) -> UplinkEvent:
    """One `up` event message -> UplinkEvent; raise EventError."""
    body = _object(payload)
    info = body.get("deviceInfo")
    dev_eui = info.get("devEui") if isinstance(info, dict) else None
    if not isinstance(dev_eui, str) or not DEV_EUI.match(dev_eui):
        raise EventError("bad_event", 0, f"deviceInfo.devEui is not 16 hex digits: {dev_eui!r}")
    dedup = body.get("deduplicationId")
    dev_addr = body.get("devAddr")
    return UplinkEvent(
        dev_eui=dev_eui.lower(), fcnt=_int_field(body, "fCnt", 0xFFFF_FFFF),
        fport=_int_field(body, "fPort", 255), data=_data(body),
        deduplication_id=dedup if isinstance(dedup, str) else None,
        time_ms=parse_time_ms(body.get("time")),
        gateway_time_ms=_gateway_time_ms(body.get("rxInfo")),
        dev_addr=dev_addr if isinstance(dev_addr, str) else None)


def encode_uplink_event(event: UplinkEvent, time_text: str | None = None,
                        gateway_time_text: str | None = None) -> bytes:
    """An `up` event as ChirpStack v4 writes it (tests and simulators)."""
    body: dict[str, Any] = {"deviceInfo": {"devEui": event.dev_eui}}
    if event.deduplication_id:
        body["deduplicationId"] = event.deduplication_id
    if time_text:
        body["time"] = time_text
    if event.dev_addr:
        body["devAddr"] = event.dev_addr
    if event.fcnt:
        body["fCnt"] = event.fcnt
    if event.fport:
        body["fPort"] = event.fport
    if event.data:
        body["data"] = base64.b64encode(event.data).decode("ascii")
    rx: dict[str, Any] = {"gatewayId": "0016c001f153a14c", "rssi": -60, "snr": 9.5}
    if gateway_time_text:
        rx["gwTime"] = gateway_time_text
    body["rxInfo"] = [rx]
    return json.dumps(body).encode()
