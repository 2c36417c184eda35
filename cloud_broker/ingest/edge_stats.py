"""`dc.gateway-stats/1` payloads -> validated counters of the gateway that owns the topic. Pure.

Totals since the agent started: poll results (`ok`, `timeout`, ...) and rejected frames by
reason (`protocol:reason`). Each name becomes an `edge_counters` tag value, so names are
bounded (characters, length, how many) to keep series cardinality bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cloud_broker.ingest.decode import Rejected, TimePolicy, _parse_json
from edge_agent.uplink.contract import GATEWAY_STATS_SCHEMA, TopicRef

MAX_COUNTERS = 256
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class GatewayStats:
    gateway: str
    ts: int
    polls: dict[str, int]
    rejected: dict[str, int]


def decode_gateway_stats(ref: TopicRef, payload: bytes, now_ms: int, max_bytes: int,
                         policy: TimePolicy | None = None) -> GatewayStats:
    """Raise `Rejected` unless the payload is a well-formed report of the topic's gateway."""
    policy = policy or TimePolicy()
    body = _parse_json(payload, max_bytes)
    expected = {"schema", "gateway", "ts", "polls", "rejected"}
    if set(body) != expected:
        extra, missing = set(body) - expected, expected - set(body)
        raise Rejected("bad_schema", f"unexpected keys {sorted(extra)}, missing {sorted(missing)}")
    if body["schema"] != GATEWAY_STATS_SCHEMA:
        raise Rejected("bad_schema", f"schema {body['schema']!r} is not {GATEWAY_STATS_SCHEMA}")
    if body["gateway"] != ref.gateway:
        raise Rejected("topic_mismatch", "gateway in payload differs from the topic")
    ts = body["ts"]
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise Rejected("bad_timestamp", f"ts must be integer epoch milliseconds, got {ts!r}")
    if ts > now_ms + policy.max_future_ms:
        raise Rejected("ts_future", f"stats stamped {ts - now_ms} ms in the future")
    if ts < now_ms - policy.max_age_ms:
        raise Rejected("ts_too_old", f"stats stamped {now_ms - ts} ms ago")
    return GatewayStats(ref.gateway, ts, _counters(body["polls"], "polls"),
                        _counters(body["rejected"], "rejected"))


def _counters(value: object, what: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise Rejected("bad_schema", f"{what} must be an object of name -> count")
    if len(value) > MAX_COUNTERS:
        raise Rejected("too_large", f"{what}: {len(value)} counters > {MAX_COUNTERS}")
    for name, count in value.items():
        if not _NAME_RE.match(name):
            raise Rejected("bad_schema", f"{what}: counter name {name[:80]!r} is not allowed")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Rejected("bad_value", f"{what}.{name} must be a non-negative integer")
    return dict(value)
