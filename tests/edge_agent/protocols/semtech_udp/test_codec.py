"""Semtech UDP datagrams: golden packets from the protocol document and a public test suite,
every error by reason, and fuzzing.

Sources:
- Lora-net/packet_forwarder PROTOCOL.TXT (v1.3 of the text, protocol version 2): the rxpk,
  stat and txpk_ack examples of sections 4 and 6
- brocaar/lorawan semtech/semtech_test.go: TestPushDataPacket, TestPushACKPacket,
  TestPullDataPacket (protocol version 1 byte layouts)
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.protocols.semtech_udp.codec import (
    Ack,
    DatagramError,
    Identifier,
    PullData,
    PullResp,
    PushData,
    RxPacket,
    TxAck,
    ack_for,
    decode_datagram,
    encode_pull_data,
    encode_pull_resp,
    encode_push_data,
    encode_rxpk,
    encode_tx_ack,
    parse_rxpk,
)

GW = "0102030405060708"

# PROTOCOL.TXT section 4: the three rxpk examples, as one PUSH_DATA (version 2, token 0x1234).
PROTOCOL_TXT_RXPK = [
    {"time": "2013-03-31T16:21:17.528002Z", "tmst": 3512348611, "chan": 2, "rfch": 0,
     "freq": 866.349812, "stat": 1, "modu": "LORA", "datr": "SF7BW125", "codr": "4/6",
     "rssi": -35, "lsnr": 5.1, "size": 32, "data": "-DS4CGaDCdG+48eJNM3Vai-zDpsR71Pn9CPA9uCON84"},
    {"time": "2013-03-31T16:21:17.530974Z", "tmst": 3512348514, "chan": 9, "rfch": 1,
     "freq": 869.1, "stat": 1, "modu": "FSK", "datr": 50000, "rssi": -75, "size": 16,
     "data": "VEVTVF9QQUNLRVRfMTIzNA=="},
    {"time": "2013-03-31T16:21:17.532038Z", "tmst": 3316387610, "chan": 0, "rfch": 0,
     "freq": 863.00981, "stat": 1, "modu": "LORA", "datr": "SF10BW125", "codr": "4/7",
     "rssi": -38, "lsnr": 5.5, "size": 32, "data": "ysgRl452xNLep9S1NTIg2lomKDxUgn3DJ7DE+b00Ass"},
]
PROTOCOL_TXT_STAT = {"time": "2014-01-12 08:59:28 GMT", "lati": 46.24000, "long": 3.25230,
                     "alti": 145, "rxnb": 2, "rxok": 2, "rxfw": 2, "ackr": 100.0, "dwnb": 2,
                     "txnb": 2}


def _push(body: dict[str, object], version: int = 2, token: bytes = b"\x12\x34") -> bytes:
    return bytes([version]) + token + b"\x00" + bytes.fromhex(GW) + json.dumps(body).encode()


def test_protocol_txt_push_data_example() -> None:
    datagram = _push({"rxpk": PROTOCOL_TXT_RXPK, "stat": PROTOCOL_TXT_STAT})
    packet = decode_datagram(datagram)
    assert isinstance(packet, PushData)
    assert (packet.version, packet.token, packet.gateway) == (2, 0x1234, GW)
    assert packet.stat == PROTOCOL_TXT_STAT
    assert ack_for(packet) == bytes.fromhex("02123401")
    # The first example's data uses '-' (not base64): a packet forwarder never sends that.
    with pytest.raises(DatagramError) as caught:
        parse_rxpk(packet.rxpk[0])
    assert caught.value.reason == "bad_base64"
    fsk = parse_rxpk(packet.rxpk[1])
    assert (fsk.data, fsk.modu, fsk.datr, fsk.rssi, fsk.lsnr) == (
        b"TEST_PACKET_1234", "FSK", 50000, -75, None)
    lora = parse_rxpk(packet.rxpk[2])  # unpadded base64 ("padding optional" in practice)
    assert len(lora.data) == 32 and lora.freq == 863.00981 and lora.tmst == 3316387610
    assert lora.time_ms == 1364746877532  # 2013-03-31T16:21:17.532038Z
    assert lora.extra == {"chan": 0, "rfch": 0, "codr": "4/7"}


@pytest.mark.parametrize(("datagram", "expected", "ack"), [
    pytest.param(bytes([1, 123, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 123, 125]),
                 PushData(1, 0x7B00, GW, ()), bytes([1, 123, 0, 1]),
                 id="brocaar semtech_test.go TestPushDataPacket / TestPushACKPacket"),
    pytest.param(bytes([1, 123, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]), PullData(1, 0x7B00, GW),
                 bytes([1, 123, 0, 4]), id="brocaar semtech_test.go TestPullDataPacket"),
    pytest.param(bytes([1, 123, 0, 1]), Ack(1, 0x7B00, Identifier.push_ack), None,
                 id="brocaar semtech_test.go PUSH_ACK"),
    pytest.param(bytes.fromhex("0200010500000000000000a0") + json.dumps(
        {"txpk_ack": {"error": "COLLISION_PACKET"}}).encode(),
        TxAck(2, 1, "00000000000000a0", "COLLISION_PACKET"), None,
        id="PROTOCOL.TXT 5.5 TX_ACK with error"),
    pytest.param(bytes.fromhex("0200010500000000000000a0"), TxAck(2, 1, "00000000000000a0"), None,
                 id="PROTOCOL.TXT 5.5 TX_ACK without JSON (no error)"),
])
def test_golden_datagrams(datagram: bytes, expected: object, ack: bytes | None) -> None:
    packet = decode_datagram(datagram)
    assert packet == expected
    assert ack_for(packet) == ack


def test_token_bytes_are_echoed_unchanged() -> None:
    """brocaar writes the token little-endian, packet_forwarder as two random bytes: the ack
    must carry the same two bytes whatever the reading."""
    packet = decode_datagram(_push({"rxpk": []}, token=b"\xab\xcd"))
    assert ack_for(packet) == b"\x02\xab\xcd\x01"


def test_encoders_round_trip() -> None:
    rx = RxPacket(data=b"\x40\x01", tmst=5, freq=868.1, rssi=-60, lsnr=9.5, datr="SF7BW125",
                  extra={"chan": 1})
    entry = encode_rxpk(rx, "2024-05-01T00:00:00.000001Z")
    push = PushData(2, 0xBEEF, GW, (entry,))
    decoded = decode_datagram(encode_push_data(push))
    assert decoded == push
    again = parse_rxpk(decoded.rxpk[0])  # type: ignore[union-attr]
    assert again.data == rx.data and again.time_ms == 1714521600000 and again.extra == {"chan": 1}
    assert decode_datagram(encode_pull_data(PullData(2, 9, GW))) == PullData(2, 9, GW)
    resp = PullResp(2, 3, {"imme": True, "freq": 864.123456, "data": "QAQ="})
    assert decode_datagram(encode_pull_resp(resp)) == resp
    assert decode_datagram(encode_tx_ack(TxAck(2, 3, GW, "NONE"))) == TxAck(2, 3, GW, "NONE")


BAD_DATAGRAMS = [
    pytest.param(b"", "truncated", 0, id="empty"),
    pytest.param(b"\x02\x00", "truncated", 2, id="half a header"),
    pytest.param(b"\x03\x00\x00\x00", "bad_version", 0, id="version 3"),
    pytest.param(b"\x02\x00\x00\x09", "unknown_identifier", 3, id="identifier 9"),
    pytest.param(b"\x02\x00\x00\x02\x01\x02", "truncated", 6, id="PULL_DATA without EUI"),
    pytest.param(b"\x02\x00\x00\x00" + bytes(8), "bad_json", 12, id="PUSH_DATA without JSON"),
    pytest.param(b"\x02\x00\x00\x00" + bytes(8) + b"[1]", "bad_json", 12, id="JSON array"),
    pytest.param(b"\x02\x00\x00\x00" + bytes(8) + b'{"rxpk":{}}', "bad_json", 12,
                 id="rxpk not an array"),
    pytest.param(b"\x02\x00\x00\x00" + bytes(8) + b"\xff\xfe", "bad_json", 12, id="not UTF-8"),
    pytest.param(b"\x02\x00\x00\x00" + bytes(8) + b"[" * 100_000, "bad_json", 12,
                 id="nesting bomb"),
    pytest.param(b'\x02\x00\x00\x03{"txpk":[]}', "bad_json", 4, id="txpk not an object"),
]


@pytest.mark.parametrize(("datagram", "reason", "offset"), BAD_DATAGRAMS)
def test_bad_datagrams_name_reason_and_offset(datagram: bytes, reason: str, offset: int) -> None:
    with pytest.raises(DatagramError) as caught:
        decode_datagram(datagram)
    assert (caught.value.reason, caught.value.offset) == (reason, offset)


BAD_RXPK = [
    pytest.param([], "bad_rxpk", id="not an object"),
    pytest.param({"size": 1}, "bad_rxpk", id="no data"),
    pytest.param({"data": 5}, "bad_rxpk", id="data not a string"),
    pytest.param({"data": "QA=="[:-3] + "*"}, "bad_base64", id="bad base64 character"),
    pytest.param({"data": "QAQ=", "size": 3}, "size_mismatch", id="size disagrees"),
    pytest.param({"data": "QAQ=", "rssi": "strong"}, "bad_rxpk", id="rssi not a number"),
    pytest.param({"data": "QAQ=", "tmst": 1.5}, "bad_rxpk", id="tmst not an integer"),
    pytest.param({"data": "QAQ=", "stat": True}, "bad_rxpk", id="stat a boolean"),
]


@pytest.mark.parametrize(("entry", "reason"), BAD_RXPK)
def test_bad_rxpk_entries(entry: object, reason: str) -> None:
    with pytest.raises(DatagramError) as caught:
        parse_rxpk(entry)
    assert caught.value.reason == reason


def test_unreadable_time_is_left_out_not_fatal() -> None:
    assert parse_rxpk({"data": "QAQ=", "time": "yesterday"}).time_ms is None
    assert parse_rxpk({"data": "QAQ=", "time": "2013-03-31T16:21:17"}).time_ms is None  # no zone


@given(st.binary(max_size=200))
def test_fuzz_random_bytes_decode_or_raise_datagram_error(data: bytes) -> None:
    try:
        decode_datagram(data)
    except DatagramError as err:
        assert err.reason and 0 <= err.offset <= len(data)


@given(st.binary(max_size=40), st.integers(0, 11), st.sampled_from([0, 2, 3, 5]))
def test_fuzz_valid_header_with_random_body(body: bytes, cut: int, identifier: int) -> None:
    datagram = bytes([2, 1, 2, identifier]) + bytes.fromhex(GW)[:cut] + body
    try:
        packet = decode_datagram(datagram)
    except DatagramError as err:
        assert err.reason in {"truncated", "bad_json"}
        return
    assert packet.token == 0x0102


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3), max_leaves=12)
RXPK_FIELDS = st.fixed_dictionaries({}, optional={
    k: JSON | st.just("QAQDAgE=") for k in ("data", "size", "stat", "tmst", "time", "freq",
                                            "rssi", "lsnr", "modu", "datr")})


@given(st.one_of(JSON, RXPK_FIELDS))
def test_fuzz_rxpk_entries_parse_or_raise_datagram_error(entry: object) -> None:
    try:
        rx = parse_rxpk(entry)
    except DatagramError as err:
        assert err.reason in {"bad_rxpk", "bad_base64", "size_mismatch"}
        return
    assert isinstance(rx.data, bytes)


@given(st.lists(RXPK_FIELDS, max_size=4), st.binary(min_size=2, max_size=2))
def test_fuzz_push_data_round_trip(entries: list[dict[str, object]], token: bytes) -> None:
    push = PushData(2, int.from_bytes(token, "big"), GW, tuple(entries))
    decoded = decode_datagram(encode_push_data(push))
    assert isinstance(decoded, PushData) and ack_for(decoded) == b"\x02" + token + b"\x01"
