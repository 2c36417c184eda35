"""Application payloads by the profile's byte layout: golden payloads of the two LoRaWAN
profiles (constructed from their documented layouts), every data type and byte order, errors
and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_profiles.schema import Profile, load_profiles
from edge_agent.protocols.semtech_udp.payload import (
    PayloadError,
    decode_payload,
    encode_payload,
)
from edge_agent.scaling import to_engineering

PROFILES = load_profiles()
METER = PROFILES.get("dc-lorawan-watermeter-v1")
SMOKE = PROFILES.get("dc-lorawan-smoke-v1")


def _engineering(profile: Profile, payload: bytes) -> dict[str, object]:
    raw = decode_payload(profile, payload)
    return {k: to_engineering(profile.point(k), v) for k, v in raw.items()}


GOLDEN = [
    # volume 1234567 L = 87 D6 12 00 LE, battery 87 %, valve open, leak + tamper, -3 °C,
    # flow 620 L/h = 6C 02 LE
    pytest.param(METER, "87d61200" "57" "01" "05" "fd" "6c02", {
        "total_volume": 1234.567, "battery": 87, "valve_state": 1, "leak": True,
        "reverse_flow": False, "tamper": True, "water_temperature": -3, "flow": 0.62},
        id="water meter: leak and tamper, frost"),
    pytest.param(METER, "ffffffff" "00" "03" "02" "7f" "ffff", {
        "total_volume": 4294967.295, "battery": 0, "valve_state": 3, "leak": False,
        "reverse_flow": True, "tamper": False, "water_temperature": 127, "flow": 65.535},
        id="water meter: limits, reverse flow"),
    pytest.param(SMOKE, "01" "5f" "16", {
        "smoke_alarm": True, "fault": False, "tamper": False, "self_test": False, "battery": 95,
        "temperature": 22}, id="smoke: alarm"),
    pytest.param(SMOKE, "0e" "0a" "80", {
        "smoke_alarm": False, "fault": True, "tamper": True, "self_test": True, "battery": 10,
        "temperature": -128}, id="smoke: fault, tamper, test, int8 minimum"),
]


@pytest.mark.parametrize(("profile", "payload_hex", "expected"), GOLDEN)
def test_golden_payloads(profile: Profile, payload_hex: str, expected: dict[str, object]
                         ) -> None:
    assert _engineering(profile, bytes.fromhex(payload_hex)) == expected


def _profile(points: list[dict[str, object]], payload_bytes: int | None = None) -> Profile:
    protocol: dict[str, object] = {"kind": "lorawan", "fport": 5}
    if payload_bytes is not None:
        protocol["payload_bytes"] = payload_bytes
    return Profile.model_validate({
        "schema": 1, "id": "t-lorawan", "vendor": "t", "model": "t", "domain": "water",
        "source": {"document": "test"}, "protocol": protocol,
        "points": [{"label_zh": "点", **p} for p in points]})


TYPES = _profile([
    {"name": "a", "byte_offset": 0, "type": "int16"},
    {"name": "b", "byte_offset": 2, "type": "int16", "byte_order": "little"},
    {"name": "c", "byte_offset": 4, "type": "uint32"},
    {"name": "d", "byte_offset": 8, "type": "int32", "byte_order": "little"},
    {"name": "e", "byte_offset": 12, "type": "float32"},
    {"name": "f", "byte_offset": 16, "type": "float32", "byte_order": "little"},
    {"name": "g", "byte_offset": 20, "type": "bool"},
    {"name": "h", "byte_offset": 21, "type": "bool", "bit": 7},
])


def test_every_type_and_byte_order() -> None:
    payload = bytes.fromhex("ff38" "38ff" "12345678" "feffffff" "409a3d71" "713d9a40" "02" "80")
    assert decode_payload(TYPES, payload) == {
        "a": -200, "b": -200, "c": 0x12345678, "d": -2, "e": 4.82, "f": 4.82, "g": True,
        "h": True}


@pytest.mark.parametrize(("profile", "payload_hex", "offset"), [
    pytest.param(METER, "87d61200570105fd6c", 9, id="one byte short of payload_bytes"),
    pytest.param(METER, "87d61200570105fd6c0200", 10, id="one byte too many"),
    pytest.param(TYPES, "ff38", 2, id="no payload_bytes: a point past the end"),
])
def test_wrong_length_is_rejected(profile: Profile, payload_hex: str, offset: int) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_payload(profile, bytes.fromhex(payload_hex))
    assert (caught.value.reason, caught.value.offset) == ("payload_length", offset)


def test_encode_rejects_a_value_that_does_not_fit() -> None:
    with pytest.raises(PayloadError, match="value_range"):
        encode_payload(SMOKE, {"battery": 300})


def test_bits_of_one_byte_are_merged_on_encode() -> None:
    payload = encode_payload(SMOKE, {"smoke_alarm": True, "tamper": True, "battery": 50})
    assert payload == bytes([0b101, 50, 0])


@given(st.fixed_dictionaries({
    "total_volume": st.integers(0, 2**32 - 1), "battery": st.integers(0, 255),
    "valve_state": st.integers(0, 255), "leak": st.booleans(), "reverse_flow": st.booleans(),
    "tamper": st.booleans(), "water_temperature": st.integers(-128, 127),
    "flow": st.integers(0, 65535)}))
def test_fuzz_encode_decode_round_trip(raw: dict[str, int | bool]) -> None:
    assert decode_payload(METER, encode_payload(METER, raw)) == raw


@given(st.binary(max_size=30))
def test_fuzz_random_payloads_decode_or_raise(payload: bytes) -> None:
    for profile in (METER, SMOKE, TYPES):
        try:
            decode_payload(profile, payload)
        except PayloadError as err:
            assert err.reason == "payload_length"
