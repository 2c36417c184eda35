"""Reading validation: each reason for rejection, and type coercion from the profile."""

from __future__ import annotations

import json

import pytest

from cloud_broker.ingest.decode import Rejected, decode_readings
from cloud_broker.registry.devices import DeviceCatalogue
from edge_agent.uplink.contract import Reading, encode_readings, parse_gateway_topic

NOW = 1_764_000_000_000
TOPIC = "dc/v1/gw/gw-pump-01/readings/ps-01"


def _payload(**override: object) -> dict[str, object]:
    body = json.loads(encode_readings("gw-pump-01", "ps-01", "dc-pumpstation-v1",
                                      [Reading(NOW, {"sump_level": 2.5, "fault_code": 0,
                                                     "pump1_running": True})]))
    body.update(override)
    return body


def _decode(body: object, topic: str = TOPIC, catalogue: DeviceCatalogue | None = None,
            raw: bytes | None = None):
    ref = parse_gateway_topic(topic)
    assert ref is not None
    payload = raw if raw is not None else json.dumps(body).encode()
    return decode_readings(ref, payload, catalogue, NOW, max_bytes=4096)


def test_valid_batch_is_coerced_by_profile(catalogue: DeviceCatalogue) -> None:
    batch = _decode(_payload(readings=[{"ts": NOW, "values": {"sump_level": 3,
                                                              "fault_code": 2.0}}]),
                    catalogue=catalogue)
    (reading,) = batch.readings
    assert reading.values == {"sump_level": 3.0, "fault_code": 2}
    assert isinstance(reading.values["sump_level"], float)
    assert isinstance(reading.values["fault_code"], int)
    assert batch.device.gateway == "gw-pump-01"


REJECTS = [
    ("bad_json", None, b"{not json"),
    ("bad_encoding", None, b"\xff\xfe{}"),
    ("too_large", None, b"[" + b"1," * 5000 + b"1]"),
    ("bad_schema", [1, 2], None),
    ("bad_schema", {"extra": 1}, None),
    ("bad_schema", {"schema": "dc.reading/9"}, None),
    ("topic_mismatch", {"device": "ps-02"}, None),
    ("profile_mismatch", {"profile": "dc-smartpole-v1"}, None),
    ("bad_schema", {"readings": []}, None),
    ("bad_timestamp", {"readings": [{"ts": "now", "values": {"fault_code": 1}}]}, None),
    ("bad_timestamp", {"readings": [{"ts": 1.5, "values": {"fault_code": 1}}]}, None),
    ("unknown_point", {"readings": [{"ts": NOW, "values": {"colour": 1}}]}, None),
    ("bad_value", {"readings": [{"ts": NOW, "values": {"sump_level": "high"}}]}, None),
    ("bad_value", {"readings": [{"ts": NOW, "values": {"sump_level": True}}]}, None),
    ("bad_value", {"readings": [{"ts": NOW, "values": {"pump1_running": 1}}]}, None),
    ("bad_value", {"readings": [{"ts": NOW, "values": {"fault_code": 1.5}}]}, None),
    ("bad_value", {"readings": [{"ts": NOW, "values": {"sump_level": 1e400}}]}, None),
]


@pytest.mark.parametrize(("reason", "override", "raw"), REJECTS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(REJECTS)])
def test_rejections_name_their_reason(catalogue: DeviceCatalogue, reason: str,
                                      override: object, raw: bytes | None) -> None:
    body: object = override if isinstance(override, list) else _payload(**(override or {}))
    with pytest.raises(Rejected) as info:
        _decode(body, catalogue=catalogue, raw=raw)
    assert info.value.reason == reason


def test_unknown_device(catalogue: DeviceCatalogue) -> None:
    body = _payload(device="ps-99")
    with pytest.raises(Rejected) as info:
        _decode(body, topic="dc/v1/gw/gw-pump-01/readings/ps-99", catalogue=catalogue)
    assert info.value.reason == "unknown_device"


def test_device_of_another_gateway(catalogue: DeviceCatalogue) -> None:
    body = _payload(gateway="gw-a")
    with pytest.raises(Rejected) as info:
        _decode(body, topic="dc/v1/gw/gw-a/readings/ps-01", catalogue=catalogue)
    assert info.value.reason == "wrong_gateway"


@pytest.mark.parametrize("topic", ["dc/v1/gw/gw a/readings/x", "dc/v1/gw/gw/readings/a/b",
                                   "dc/v2/gw/g/readings/d", "dc/v1/gw/g/readings/" + "x" * 70,
                                   "dc/v1/gw/g/other"])
def test_topics_outside_the_namespace_do_not_parse(topic: str) -> None:
    assert parse_gateway_topic(topic) is None


def test_readings_outside_the_time_window_are_quarantined_not_dropped(
        catalogue: DeviceCatalogue) -> None:
    future, old = NOW + 3_600_000, NOW - 40 * 86_400_000
    body = _payload(readings=[{"ts": NOW, "values": {"fault_code": 1}},
                              {"ts": future, "values": {"fault_code": 2}},
                              {"ts": old, "values": {"fault_code": 3}}])
    batch = _decode(body, catalogue=catalogue)
    assert [r.ts for r in batch.readings] == [NOW]
    assert [(q.reason, q.ts, q.values) for q in batch.quarantined] == [
        ("ts_future", future, {"fault_code": 2}), ("ts_too_old", old, {"fault_code": 3})]
