"""Reading-batch payloads -> validated, typed readings of a known device. Pure.

Every rejection raises `Rejected` with a short `reason` (a metric label) and a human detail.
Values are coerced to the point's type from the profile, not from JSON, so a field keeps one
InfluxDB type forever (220 and 220.0 both become the float 220.0 for a scaled point).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from cloud_broker.registry.devices import DeviceCatalogue, KnownDevice
from edge_agent.uplink.contract import READING_SCHEMA, TopicRef

Value = bool | int | float

MAX_READINGS_PER_MESSAGE = 10_000


class Rejected(ValueError):
    """A message that cannot be ingested; `reason` is the metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class TimePolicy:
    """Readings stamped further than this from the ingest's clock are rejected, not written."""

    max_future_ms: int = 5 * 60_000
    max_age_ms: int = 30 * 86_400_000


@dataclass(frozen=True)
class DecodedReading:
    ts: int
    values: dict[str, Value]


@dataclass(frozen=True)
class Quarantined:
    """A valid reading whose timestamp is outside the accepted window (TimePolicy)."""

    reason: str  # "ts_future" | "ts_too_old"
    ts: int
    values: dict[str, Value]


@dataclass(frozen=True)
class DecodedBatch:
    device: KnownDevice
    readings: list[DecodedReading]
    quarantined: list[Quarantined] = field(default_factory=list)


def _coerce(name: str, kind: str, value: object) -> Value:
    """Coerce a JSON value to the point's stored kind ("bool", "int" or "float")."""
    value_type = type(value)
    if kind == "bool":
        if value_type is bool:
            return value  # type: ignore[return-value]
        raise Rejected("bad_value", f"{name} must be true/false, got {value!r}")
    if value_type is bool or value_type not in (int, float):
        raise Rejected("bad_value", f"{name} must be a number, got {value!r}")
    if value_type is float and not math.isfinite(value):  # type: ignore[arg-type]
        raise Rejected("bad_value", f"{name} is not finite: {value!r}")
    if kind == "int":
        if value_type is float and not value.is_integer():  # type: ignore[union-attr]
            raise Rejected("bad_value", f"{name} must be an integer, got {value!r}")
        return int(value)  # type: ignore[call-overload, no-any-return]
    return float(value)  # type: ignore[arg-type]


def _parse_json(payload: bytes, max_bytes: int) -> dict[str, object]:
    if len(payload) > max_bytes:
        raise Rejected("too_large", f"{len(payload)} bytes > limit {max_bytes}")
    try:
        body = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise Rejected("bad_encoding", f"payload is not UTF-8: {err}") from err
    except json.JSONDecodeError as err:
        raise Rejected("bad_json", f"{err.msg} at {err.pos}") from err
    if not isinstance(body, dict):
        raise Rejected("bad_schema", "payload is not a JSON object")
    return body


def _check_envelope(body: dict[str, object], ref: TopicRef,
                    catalogue: DeviceCatalogue) -> KnownDevice:
    expected = {"schema", "gateway", "device", "profile", "readings"}
    if set(body) != expected:
        extra, missing = set(body) - expected, expected - set(body)
        raise Rejected("bad_schema", f"unexpected keys {sorted(extra)}, missing {sorted(missing)}")
    if body["schema"] != READING_SCHEMA:
        raise Rejected("bad_schema", f"schema {body['schema']!r} is not {READING_SCHEMA}")
    if body["gateway"] != ref.gateway or body["device"] != ref.device:
        raise Rejected("topic_mismatch", "gateway/device in payload differ from the topic")
    device = catalogue.get(str(ref.device))
    if device is None:
        raise Rejected("unknown_device", f"device {ref.device!r} is not registered")
    if device.gateway != ref.gateway:
        raise Rejected("wrong_gateway",
                       f"device {device.id!r} belongs to {device.gateway!r}, not {ref.gateway!r}")
    if body["profile"] != device.profile.id:
        raise Rejected("profile_mismatch",
                       f"device {device.id!r} follows {device.profile.id!r}, "
                       f"not {body['profile']!r}")
    return device


def _decode_reading(item: object, device: KnownDevice) -> DecodedReading:
    if not isinstance(item, dict) or set(item) != {"ts", "values"}:
        raise Rejected("bad_schema", "each reading must be {\"ts\": ..., \"values\": {...}}")
    ts, values = item["ts"], item["values"]
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise Rejected("bad_timestamp", f"ts must be integer epoch milliseconds, got {ts!r}")
    if not isinstance(values, dict) or not values:
        raise Rejected("bad_schema", "values must be a non-empty object")
    kinds = device.point_kinds
    coerced: dict[str, Value] = {}
    for name, value in values.items():
        kind = kinds.get(name)
        if kind is None:
            raise Rejected("unknown_point", f"{name!r} is not a point of {device.profile.id}")
        coerced[name] = _coerce(name, kind, value)
    return DecodedReading(ts, coerced)


def decode_readings(ref: TopicRef, payload: bytes, catalogue: DeviceCatalogue, now_ms: int,
                    max_bytes: int, policy: TimePolicy = TimePolicy()) -> DecodedBatch:
    """Validate one reading-batch message against the device's profile.

    A malformed message is rejected whole (`Rejected`). Well-formed readings whose timestamp is
    outside the TimePolicy window are returned apart, in `quarantined`, and not written as
    readings: a gateway with a wrong clock must not plant points in the wrong place.
    """
    body = _parse_json(payload, max_bytes)
    device = _check_envelope(body, ref, catalogue)
    items = body["readings"]
    if not isinstance(items, list) or not items:
        raise Rejected("bad_schema", "readings must be a non-empty list")
    if len(items) > MAX_READINGS_PER_MESSAGE:
        raise Rejected("too_large", f"{len(items)} readings > {MAX_READINGS_PER_MESSAGE}")
    good: list[DecodedReading] = []
    quarantined: list[Quarantined] = []
    for item in items:
        reading = _decode_reading(item, device)
        if reading.ts > now_ms + policy.max_future_ms:
            quarantined.append(Quarantined("ts_future", reading.ts, reading.values))
        elif reading.ts < now_ms - policy.max_age_ms:
            quarantined.append(Quarantined("ts_too_old", reading.ts, reading.values))
        else:
            good.append(reading)
    return DecodedBatch(device, good, quarantined)
