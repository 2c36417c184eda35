"""OTAA (LoRaWAN 1.0.x clause 6.2): join-request MIC, session-key derivation and join-accept
encryption against public vectors; the RX1 window of the join-accept; fuzzing.

Sources:
- brocaar/lorawan phypayload_test.go: TestPHYPayloadJoinRequest, TestPHYPayloadJoinAccept,
  ExampleNewPHYPayload_joinAcceptSend
- lora-packet (npm) __tests__/mic_test.ts (join request MIC), __tests__/key_gen_test.ts,
  __tests__/join_accept_encrypt.ts ("join accept packet with zero value")
Cases marked "constructed" follow the regional parameters (RP002-1.0.x, CN470-510 and EU868).
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.protocols.semtech_udp.join import (
    JoinAccept,
    build_join_accept,
    build_join_request,
    join_accept_txpk,
    join_request_mic_valid,
    open_join_accept,
    parse_join_request,
    rx1_frequency,
    session_keys,
)
from edge_agent.protocols.semtech_udp.lorawan import LorawanError


def test_brocaar_join_request() -> None:
    """TestPHYPayloadJoinRequest: AppEUI 0102030401020304, DevEUI 0203040502030405,
    DevNonce [16, 45], AppKey 01 x16."""
    data = base64.b64decode("AAQDAgEEAwIBBQQDAgUEAwItEGqZDhI=")
    request = parse_join_request(data)
    assert (request.app_eui, request.dev_eui, request.dev_nonce) == (
        "0102030401020304", "0203040502030405", 0x102D)
    assert join_request_mic_valid(request, bytes([1] * 16))
    assert build_join_request(request.app_eui, request.dev_eui, 0x102D, bytes([1] * 16)) == data


@pytest.mark.parametrize(("phy_hex", "valid"), [
    pytest.param("0039363463336913AA05693574323831330489C65B1304", True,
                 id="lora-packet mic_test.ts: join request MIC c65b1304"),
    pytest.param("0039363463336913AA05693574323831330489C65B1305", False,
                 id="lora-packet mic_test.ts: bodged join request MIC"),
])
def test_lora_packet_join_request_mic(phy_hex: str, valid: bool) -> None:
    request = parse_join_request(bytes.fromhex(phy_hex))
    assert join_request_mic_valid(request, bytes.fromhex("98929b92c49edba9676d646d3b612456")) \
        is valid


def test_lora_packet_session_keys() -> None:
    """key_gen_test.ts: AppKey 98929b.., NetID aabbcc, AppNonce 376338, DevNonce f18e."""
    nwk, app = session_keys(bytes.fromhex("98929b92c49edba9676d646d3b612456"),
                            app_nonce=0x376338, net_id=0xAABBCC, dev_nonce=0xF18E)
    assert (nwk.hex(), app.hex()) == ("4e3d6e6afbcc67af2ba3c8e8ec4acf4b",
                                      "610897aa6f1460623443b527d3ac6a9d")


@pytest.mark.parametrize(("accept", "app_key", "phy"), [
    pytest.param(JoinAccept(0, 0, 0, 0, 0), bytes(16),
                 bytes.fromhex("20e3de108795f776b8037610ef7869b5b3"),
                 id="lora-packet join_accept_encrypt.ts: zero values"),
    pytest.param(JoinAccept(0x010101, 0x020202, 0x01020304, 0, 0), bytes(range(1, 17)),
                 bytes([32, 35, 207, 51, 84, 137, 170, 227, 24, 60, 11, 224, 186, 168, 222,
                        229, 243]), id="brocaar ExampleNewPHYPayload_joinAcceptSend"),
    pytest.param(JoinAccept(0x570BC7, 0x221101, 0x02031980, 0, 0),
                 bytes.fromhex("00112233445566778899aabbccddeeff"),
                 bytes.fromhex("20493eeb51fba2116f810edb3742975142"),
                 id="brocaar TestPHYPayloadJoinAccept (MIC 43485bbc)"),
])
def test_join_accept_vectors(accept: JoinAccept, app_key: bytes, phy: bytes) -> None:
    assert build_join_accept(accept, app_key) == phy
    assert open_join_accept(phy, app_key) == accept


def test_join_accept_with_cf_list_round_trip() -> None:
    """Constructed: a 16-byte CFList makes a 33-byte join-accept."""
    accept = JoinAccept(0x123456, 0x000013, 0x26011BDA, 0x03, 1, bytes(range(16)))
    phy = build_join_accept(accept, bytes(16))
    assert len(phy) == 33 and open_join_accept(phy, bytes(16)) == accept
    with pytest.raises(LorawanError, match="bad_mic"):
        open_join_accept(phy, bytes([1] * 16))


@pytest.mark.parametrize(("region", "uplink", "rx1"), [
    ("CN470", 470.3, 500.3), ("CN470", 470.9, 500.9), ("CN470", 479.7, 509.7),
    ("CN470", 479.9, 500.3), ("CN470", 489.3, 509.7), ("EU868", 868.1, 868.1),
])
def test_rx1_frequency(region: str, uplink: float, rx1: float) -> None:
    """Constructed from RP002-1.0.x: CN470 RX1 channel = uplink channel mod 48."""
    assert rx1_frequency(region, uplink) == rx1  # type: ignore[arg-type]


def test_rx1_frequency_outside_the_band() -> None:
    for uplink in (868.1, 489.5, 470.1):  # uplink channels are 0..95: 470.3..489.3 MHz
        with pytest.raises(LorawanError, match="bad_frequency"):
            rx1_frequency("CN470", uplink)


def test_join_accept_txpk_waits_five_seconds_and_wraps() -> None:
    txpk = join_accept_txpk(b"\x20" + bytes(16), "EU868", 2**32 - 1_000_000, 868.3, "SF9BW125")
    assert txpk["tmst"] == 4_000_000 and txpk["freq"] == 868.3 and txpk["powe"] == 14
    assert txpk["ipol"] is True and txpk["imme"] is False and txpk["size"] == 17
    assert base64.b64decode(txpk["data"]) == b"\x20" + bytes(16)


@pytest.mark.parametrize(("data", "reason"), [
    (bytes(22), "phy_truncated"), (bytes(24), "bad_length"), (b"\x20" + bytes(22),
                                                              "unsupported_mtype")])
def test_bad_join_requests(data: bytes, reason: str) -> None:
    with pytest.raises(LorawanError) as caught:
        parse_join_request(data)
    assert caught.value.reason == reason


@given(st.binary(max_size=40))
def test_fuzz_join_request_parser(data: bytes) -> None:
    try:
        request = parse_join_request(data)
    except LorawanError as err:
        assert err.reason in {"phy_truncated", "bad_length", "unsupported_mtype"}
        return
    assert request.raw == data


@given(st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8),
       st.integers(0, 0xFFFF), st.binary(min_size=16, max_size=16))
def test_fuzz_join_request_round_trip(app_eui: bytes, dev_eui: bytes, nonce: int,
                                      key: bytes) -> None:
    request = parse_join_request(build_join_request(app_eui.hex(), dev_eui.hex(), nonce, key))
    assert (request.app_eui, request.dev_eui, request.dev_nonce) == (app_eui.hex(),
                                                                     dev_eui.hex(), nonce)
    assert join_request_mic_valid(request, key)


@given(st.binary(max_size=40), st.binary(min_size=16, max_size=16))
def test_fuzz_open_join_accept(phy: bytes, key: bytes) -> None:
    try:
        open_join_accept(phy, key)
    except LorawanError as err:
        assert err.reason in {"bad_length", "bad_mic"}
