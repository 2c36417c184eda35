"""ChirpStack v4 uplink events: the documented example, the fields proto3 JSON leaves out,
errors by reason, and fuzzing.

Source of the golden event: chirpstack/chirpstack-docs src/chirpstack/integrations/events.md,
"`up` - Uplink event" JSON example (ChirpStack v4).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.protocols.chirpstack.codec import (
    EventError,
    UplinkEvent,
    decode_uplink_event,
    encode_uplink_event,
    topic_dev_eui,
)

DOCS_UP_EVENT = """{
  "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
  "time": "2022-07-18T09:34:15.775023242+00:00",
  "deviceInfo": {
    "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
    "tenantName": "ChirpStack",
    "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
    "applicationName": "Test application",
    "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
    "deviceProfileName": "Test device-profile",
    "deviceName": "Test device",
    "devEui": "0101010101010101",
    "tags": {"key": "value"}
  },
  "devAddr": "00189440",
  "dr": 1,
  "fPort": 1,
  "data": "qg==",
  "rxInfo": [{
    "gatewayId": "0016c001f153a14c",
    "uplinkId": 4217106255,
    "rssi": -36,
    "snr": 10.5,
    "context": "E3OWOQ==",
    "metadata": {"region_name": "eu868", "region_common_name": "EU868"}
  }],
  "txInfo": {
    "frequency": 867100000,
    "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}}
  }
}"""


def test_docs_example() -> None:
    event = decode_uplink_event(DOCS_UP_EVENT.encode())
    assert event == UplinkEvent(
        dev_eui="0101010101010101", fcnt=0, fport=1, data=b"\xaa",
        deduplication_id="3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        time_ms=1658136855775, gateway_time_ms=None, dev_addr="00189440")
    # no gateway time in the example: the reading takes ChirpStack's time
    assert event.reading_time_ms(300_000) == 1658136855775


def test_gateway_time_is_the_earliest_and_must_agree_with_chirpstack() -> None:
    body = json.loads(DOCS_UP_EVENT)
    body["fCnt"] = 42
    body["rxInfo"] = [{"gatewayId": "a", "gwTime": "2022-07-18T09:34:15.700Z"},
                      {"gatewayId": "b", "time": "2022-07-18T09:34:15.650Z"},
                      {"gatewayId": "c"}]
    event = decode_uplink_event(json.dumps(body).encode())
    assert (event.fcnt, event.gateway_time_ms) == (42, 1658136855650)
    assert event.reading_time_ms(300_000) == 1658136855650
    assert event.reading_time_ms(100) == 1658136855775  # too far off: ChirpStack's time


@pytest.mark.parametrize(("topic", "dev_eui"), [
    ("application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up",
     "0101010101010101"),
    ("application/1/device/ABCDEF0123456789/event/up", "abcdef0123456789"),
    ("custom/up", None),
])
def test_topic_dev_eui(topic: str, dev_eui: str | None) -> None:
    assert topic_dev_eui(topic) == dev_eui


BAD_EVENTS = [
    pytest.param(b"{", "bad_json", id="truncated JSON"),
    pytest.param(b"\xff", "bad_json", id="not UTF-8"),
    pytest.param(b"[]", "bad_json", id="not an object"),
    pytest.param(b'{"devEUI": "AgICAgICAgI="}', "bad_event", id="v3 JSON (no deviceInfo)"),
    pytest.param(b'{"deviceInfo": {"devEui": "0101"}}', "bad_event", id="short DevEUI"),
    pytest.param(b'{"deviceInfo": {"devEui": "0101010101010101"}, "fPort": 256}', "bad_event",
                 id="FPort 256"),
    pytest.param(b'{"deviceInfo": {"devEui": "0101010101010101"}, "fCnt": -1}', "bad_event",
                 id="negative FCnt"),
    pytest.param(b'{"deviceInfo": {"devEui": "0101010101010101"}, "data": "q*=="}',
                 "bad_base64", id="bad base64"),
    pytest.param(b'{"deviceInfo": {"devEui": "0101010101010101"}, "data": 7}', "bad_event",
                 id="data not a string"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD_EVENTS)
def test_bad_events(payload: bytes, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        decode_uplink_event(payload)
    assert caught.value.reason == reason


def test_quoted_integers_of_the_protobuf_json_mapping() -> None:
    event = decode_uplink_event(
        b'{"deviceInfo": {"devEui": "0101010101010101"}, "fCnt": "70000", "fPort": 2}')
    assert (event.fcnt, event.fport, event.data) == (70000, 2, b"")


@given(dev_eui=st.binary(min_size=8, max_size=8), fcnt=st.integers(0, 2**32 - 1),
       fport=st.integers(0, 255), data=st.binary(max_size=50))
def test_fuzz_round_trip(dev_eui: bytes, fcnt: int, fport: int, data: bytes) -> None:
    event = UplinkEvent(dev_eui.hex(), fcnt, fport, data, "id-1", None, 1658136855650)
    decoded = decode_uplink_event(encode_uplink_event(event, None, "2022-07-18T09:34:15.650Z"))
    assert decoded == event


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=12)


@given(st.one_of(JSON, st.fixed_dictionaries({"deviceInfo": st.fixed_dictionaries(
    {"devEui": st.just("0101010101010101")})}, optional={
        k: JSON for k in ("fCnt", "fPort", "data", "rxInfo", "time", "deduplicationId")})))
def test_fuzz_events_decode_or_raise_event_error(body: object) -> None:
    try:
        decode_uplink_event(json.dumps(body).encode())
    except EventError as err:
        assert err.reason in {"bad_json", "bad_event", "bad_base64"}


@given(st.binary(max_size=100))
def test_fuzz_random_bytes(payload: bytes) -> None:
    try:
        decode_uplink_event(payload)
    except EventError as err:
        assert err.reason in {"bad_json", "bad_event"}
