"""The MQTT contract between gateways and the cloud: topic namespace and payload schemas.

Topics (all under ``dc/v1``; documented in docs/architecture.md):

    dc/v1/gw/{gateway}/readings/{device}        QoS 1   reading batches (gateway -> cloud)
    dc/v1/gw/{gateway}/status                   QoS 1   retained birth / last will
    dc/v1/gw/{gateway}/devices/{device}/status  QoS 1   retained device reachability
    dc/v1/gw/{gateway}/buffer                   QoS 1   retained store-and-forward state
    dc/v1/gw/{gateway}/stats                    QoS 1   poll results and rejected frames (totals)
    dc/v1/alarms/events/{severity}/{domain}/{device}/{rule}   QoS 1   every alarm transition
    dc/v1/alarms/active/{severity}/{domain}/{device}/{rule}   QoS 1   retained: active alarms now
    dc/v1/cmd/alarms/ack  (+ /result/{alarm_id})               QoS 1   operator acknowledgements

Identifiers in topics match ``ID_PATTERN``: no ``/``, ``+``, ``#`` or spaces. Pure module: it
builds and parses strings and JSON, nothing else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

ROOT = "dc/v1"
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

READING_SCHEMA = "dc.reading/1"
GATEWAY_STATUS_SCHEMA = "dc.gateway-status/1"
DEVICE_STATUS_SCHEMA = "dc.device-status/1"
BUFFER_STATUS_SCHEMA = "dc.buffer-status/1"
GATEWAY_STATS_SCHEMA = "dc.gateway-stats/1"
ALARM_SCHEMA = "dc.alarm/1"

READINGS_SUBSCRIPTION = f"{ROOT}/gw/+/readings/+"
GATEWAY_STATUS_SUBSCRIPTION = f"{ROOT}/gw/+/status"
DEVICE_STATUS_SUBSCRIPTION = f"{ROOT}/gw/+/devices/+/status"
BUFFER_STATUS_SUBSCRIPTION = f"{ROOT}/gw/+/buffer"
GATEWAY_STATS_SUBSCRIPTION = f"{ROOT}/gw/+/stats"
ALARM_EVENTS_SUBSCRIPTION = f"{ROOT}/alarms/events/#"
ALARMS_ACTIVE_SUBSCRIPTION = f"{ROOT}/alarms/active/#"
ALARM_ACK_TOPIC = f"{ROOT}/cmd/alarms/ack"

Value = bool | int | float


def readings_topic(gateway: str, device: str) -> str:
    return f"{ROOT}/gw/{gateway}/readings/{device}"


def gateway_status_topic(gateway: str) -> str:
    return f"{ROOT}/gw/{gateway}/status"


def device_status_topic(gateway: str, device: str) -> str:
    return f"{ROOT}/gw/{gateway}/devices/{device}/status"


def buffer_status_topic(gateway: str) -> str:
    return f"{ROOT}/gw/{gateway}/buffer"


def gateway_stats_topic(gateway: str) -> str:
    return f"{ROOT}/gw/{gateway}/stats"


def alarm_event_topic(severity: str, domain: str, device: str, rule: str) -> str:
    return f"{ROOT}/alarms/events/{severity}/{domain}/{device}/{rule}"


def alarm_active_topic(severity: str, domain: str, device: str, rule: str) -> str:
    return f"{ROOT}/alarms/active/{severity}/{domain}/{device}/{rule}"


def alarm_ack_result_topic(alarm_id: str) -> str:
    return f"{ALARM_ACK_TOPIC}/result/{alarm_id}"


@dataclass(frozen=True)
class TopicRef:
    """What a gateway topic names: its kind ("readings", "status", "device_status") and ids."""

    kind: str
    gateway: str
    device: str | None = None


def parse_gateway_topic(topic: str) -> TopicRef | None:
    """Parse a ``dc/v1/gw/...`` topic; None when it does not fit the namespace."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0:3] != ["dc", "v1", "gw"] or not ID_RE.match(parts[3]):
        return None
    gateway, rest = parts[3], parts[4:]
    if rest == ["status"]:
        return TopicRef("status", gateway)
    if rest == ["buffer"]:
        return TopicRef("buffer", gateway)
    if rest == ["stats"]:
        return TopicRef("stats", gateway)
    if len(rest) == 2 and rest[0] == "readings" and ID_RE.match(rest[1]):
        return TopicRef("readings", gateway, rest[1])
    if len(rest) == 3 and rest[0] == "devices" and rest[2] == "status" and ID_RE.match(rest[1]):
        return TopicRef("device_status", gateway, rest[1])
    return None


@dataclass(frozen=True)
class Reading:
    """Values of one device read at one instant (``ts``: UTC epoch milliseconds, read time)."""

    ts: int
    values: dict[str, Value] = field(default_factory=dict)


def encode_readings(gateway: str, device: str, profile: str, readings: list[Reading]) -> bytes:
    """The reading-batch payload, ``dc.reading/1``."""
    body = {
        "schema": READING_SCHEMA, "gateway": gateway, "device": device, "profile": profile,
        "readings": [{"ts": r.ts, "values": r.values} for r in readings],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def encode_gateway_status(gateway: str, state: str, ts: int | None, **extra: object) -> bytes:
    body: dict[str, object] = {"schema": GATEWAY_STATUS_SCHEMA, "gateway": gateway, "state": state}
    if ts is not None:
        body["ts"] = ts
    body.update(extra)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def encode_device_status(gateway: str, device: str, state: str, ts: int, reason: str = "",
                         consecutive_failures: int = 0) -> bytes:
    body = {"schema": DEVICE_STATUS_SCHEMA, "gateway": gateway, "device": device, "state": state,
            "ts": ts, "reason": reason, "consecutive_failures": consecutive_failures}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def encode_buffer_status(gateway: str, ts: int, readings: int, size_bytes: int,
                         oldest_ts: int | None, dropped: dict[str, int]) -> bytes:
    """What the gateway holds on disk and what it had to drop (totals since the store began)."""
    body = {"schema": BUFFER_STATUS_SCHEMA, "gateway": gateway, "ts": ts, "readings": readings,
            "bytes": size_bytes, "oldest_ts": oldest_ts, "dropped": dropped,
            "dropped_total": sum(dropped.values())}
    return json.dumps(body, separators=(",", ":")).encode()


def encode_gateway_stats(gateway: str, ts: int, polls: dict[str, int],
                         rejected: dict[str, int]) -> bytes:
    """Counters since the agent started: polls by result ("ok", "timeout", ...) and frames
    rejected by reason ("bad_crc", "replay", ...). Totals, so a lost message loses nothing."""
    body = {"schema": GATEWAY_STATS_SCHEMA, "gateway": gateway, "ts": ts, "polls": polls,
            "rejected": rejected}
    return json.dumps(body, separators=(",", ":")).encode()
