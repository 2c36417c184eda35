"""dc.gateway-stats/1 -> edge_counters: only well-formed reports of the topic's own gateway land;
a bad one is rejected and counted and the stream goes on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cloud_broker.ingest.decode import Rejected
from cloud_broker.ingest.edge_stats import decode_gateway_stats
from edge_agent.uplink import contract

DEVICES = [{"id": "pole-001", "gateway": "gw-a", "profile": "dc-smartpole-v1"}]
NOW = 1_764_000_000_000


def _stats(gateway: str, ts: int, polls: dict[str, Any], rejected: dict[str, Any]) -> bytes:
    return contract.encode_gateway_stats(gateway, ts, polls, rejected)


def test_counters_land_and_a_bad_report_is_rejected_and_counted(
        start_cloud: Callable[..., Any], poll: Callable[..., Any],
        now_ms: Callable[[], int]) -> None:
    cloud = start_cloud(DEVICES)
    topic = contract.gateway_stats_topic("gw-a")
    t1 = now_ms()
    cloud.publish(topic, _stats("gw-a", t1, {"ok": 10, "timeout": 2}, {"modbus:bad_crc": 1}))

    def counters(ts: int) -> dict[tuple[str, str], int]:
        rows = cloud.rows(f"SELECT * FROM edge_counters WHERE gateway='gw-a' AND time = {ts}ms")
        return {(r["kind"], r["reason"]): r["total"] for r in rows}

    poll(lambda: counters(t1), 10, what="the first report")
    assert counters(t1) == {("poll", "ok"): 10, ("poll", "timeout"): 2,
                            ("rejected", "modbus:bad_crc"): 1}

    t2 = now_ms() + 1
    cloud.publish(topic, _stats("gw-a", t2, {"ok": "eleven"}, {}))
    cloud.publish(topic, _stats("gw-b", t2, {"ok": 11}, {}))  # another gateway's numbers
    cloud.publish(topic, b"{")
    t3 = t2 + 1
    cloud.publish(topic, _stats("gw-a", t3, {"ok": 12, "timeout": 2}, {}))
    poll(lambda: counters(t3), 10, what="the report after the bad ones")
    assert counters(t3) == {("poll", "ok"): 12, ("poll", "timeout"): 2}
    assert counters(t2) == {}
    assert cloud.sample("dciot_ingest_rejected_total", reason="bad_value") == 1
    assert cloud.sample("dciot_ingest_rejected_total", reason="topic_mismatch") == 1
    assert cloud.sample("dciot_ingest_rejected_total", reason="bad_json") == 1
    assert cloud.sample("dciot_ingest_messages_received_total", kind="stats") == 5


def _ref() -> contract.TopicRef:
    ref = contract.parse_gateway_topic(contract.gateway_stats_topic("gw-a"))
    assert ref is not None and ref.kind == "stats"
    return ref


@pytest.mark.parametrize(("body", "reason"), [
    ({"polls": {"ok": -1}}, "bad_value"),
    ({"polls": {"ok": True}}, "bad_value"),
    ({"polls": {"ok": 1.5}}, "bad_value"),
    ({"polls": ["ok"]}, "bad_schema"),
    ({"rejected": {"a b": 1}}, "bad_schema"),
    ({"rejected": {"x\\": 1}}, "bad_schema"),
    ({"rejected": {"": 1}}, "bad_schema"),
    ({"rejected": {f"r{i}": 1 for i in range(257)}}, "too_large"),
    ({"ts": "now"}, "bad_timestamp"),
    ({"ts": NOW + 3_600_000}, "ts_future"),
    ({"ts": NOW - 40 * 86_400_000}, "ts_too_old"),
    ({"schema": "dc.gateway-stats/0"}, "bad_schema"),
    ({"extra": 1}, "bad_schema"),
])
def test_malformed_reports_are_rejected(body: dict[str, Any], reason: str) -> None:
    good = json.loads(_stats("gw-a", NOW, {"ok": 1}, {"cjt188:bad_checksum": 0}))
    assert decode_gateway_stats(_ref(), json.dumps(good).encode(), NOW, 4096).polls == {"ok": 1}
    with pytest.raises(Rejected) as err:
        decode_gateway_stats(_ref(), json.dumps({**good, **body}).encode(), NOW, 4096)
    assert err.value.reason == reason
