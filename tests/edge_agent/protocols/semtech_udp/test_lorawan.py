"""LoRaWAN 1.0.x frames: public test vectors for MIC and FRMPayload crypto, then frame-counter
reconstruction, the replay rules and fuzzing.

Vector sources (each case names its own):
- lora-packet (npm, github.com/anthonykirby/lora-packet) __tests__/mic_test.ts and
  __tests__/decrypt_test.ts
- brocaar/lorawan (ChirpStack's Go package) phypayload_test.go: TestPHYPayloadData and
  ExampleNewPHYPayload
- The Things Network v2 (TheThingsArchive/ttn) utils/fcnt/fcnt_test.go: TestGetFullFCnt
Cases marked "constructed" are built here from the specification's layout (clause 4.3.1.5,
4.3.3, 4.4) and checked by round trip only.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.protocols.semtech_udp.lorawan import (
    FcntState,
    LorawanError,
    MType,
    UplinkSpec,
    build_uplink,
    check_uplink,
    crypt_frm_payload,
    decrypt_payload,
    frame_mic_valid,
    parse_data_frame,
    reconstruct_fcnt,
)

LP_NWK = bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3")  # lora-packet README/tests
LP_APP = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588")

MIC_VECTORS = [
    pytest.param("40F17DBE4900020001954378762B11FF0D", LP_NWK, 2, True,
                 id="lora-packet mic_test.ts: data up, FCnt 2"),
    pytest.param("40F17DBE49000300012A3518AF", LP_NWK, 3, True,
                 id="lora-packet mic_test.ts: data up, no payload, FCnt 3"),
    pytest.param("40F17DBE49000300012A3518AA", LP_NWK, 3, False,
                 id="lora-packet mic_test.ts: bodged MIC"),
    pytest.param("60f17dbe4920020001f9d65d27", LP_NWK, 2, True,
                 id="lora-packet mic_test.ts: downlink ACK"),
    pytest.param(base64.b64decode("QAQDAgGAAQABppRkJhXWw7WC").hex(), bytes([2] * 16), 1, True,
                 id="brocaar/lorawan phypayload_test.go TestPHYPayloadData"),
]


@pytest.mark.parametrize(("phy_hex", "nwk_s_key", "fcnt", "valid"), MIC_VECTORS)
def test_mic_public_vectors(phy_hex: str, nwk_s_key: bytes, fcnt: int, valid: bool) -> None:
    frame = parse_data_frame(bytes.fromhex(phy_hex))
    assert frame.fcnt16 == fcnt
    assert frame_mic_valid(frame, nwk_s_key, fcnt) is valid


DECRYPT_VECTORS = [
    pytest.param("40F17DBE4900020001954378762B11FF0D", LP_APP, b"test",
                 id="lora-packet decrypt_test.ts: test payload"),
    pytest.param("40f17dbe490004000155332de41a11adc072553544429ce7787707d1c316e027e7e5e334263376"
                 "affb8aa17ad30075293f28dea8a20af3c5e7", LP_APP,
                 b"The quick brown fox jumps over the lazy dog.",
                 id="lora-packet decrypt_test.ts: large payload (3 AES blocks)"),
    pytest.param("40F17DBE4900020001954378762B11FF0D",
                 bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc580"), bytes.fromhex("5999fc3f"),
                 id="lora-packet decrypt_test.ts: bad key scrambles payload"),
    pytest.param("40F17DBE4900020001954478762B11FF0D", LP_APP, b"tbst",
                 id="lora-packet decrypt_test.ts: bad data lightly scrambles payload"),
    pytest.param(base64.b64decode("QAQDAgGAAQABppRkJhXWw7WC").hex(), bytes([1] * 16), b"hello",
                 id="brocaar/lorawan phypayload_test.go TestPHYPayloadData"),
]


@pytest.mark.parametrize(("phy_hex", "app_s_key", "plain"), DECRYPT_VECTORS)
def test_frm_payload_public_vectors(phy_hex: str, app_s_key: bytes, plain: bytes) -> None:
    frame = parse_data_frame(bytes.fromhex(phy_hex))
    assert decrypt_payload(frame, frame.fcnt16, LP_NWK, app_s_key) == plain


def test_fields_of_the_brocaar_vector() -> None:
    """brocaar/lorawan TestPHYPayloadData: DevAddr 01020304, ADR, FCnt 1, FPort 1."""
    frame = parse_data_frame(base64.b64decode("QAQDAgGAAQABppRkJhXWw7WC"))
    assert (frame.mtype, frame.dev_addr_hex, frame.adr, frame.fcnt16, frame.fport,
            frame.fopts) == (MType.unconfirmed_up, "01020304", True, 1, 1, b"")


def test_build_matches_brocaar_example() -> None:
    """brocaar/lorawan ExampleNewPHYPayload: confirmed up, FCnt 0, FPort 10, payload 01020304."""
    phy = build_uplink(UplinkSpec(0x01020304, 0, 10, bytes([1, 2, 3, 4]), confirmed=True),
                       bytes(range(1, 17)), bytes(range(16, 0, -1)))
    assert list(phy) == [128, 4, 3, 2, 1, 0, 0, 0, 10, 226, 100, 212, 247, 181, 106, 14, 117]


def test_build_reproduces_lora_packet_frame() -> None:
    """Rebuilding lora-packet's "test" frame (DevAddr 49BE7DF1, FCnt 2, FPort 1) byte for byte."""
    phy = build_uplink(UplinkSpec(0x49BE7DF1, 2, 1, b"test"), LP_NWK, LP_APP)
    assert phy.hex().upper() == "40F17DBE4900020001954378762B11FF0D"


def test_fport_zero_uses_the_network_key() -> None:
    """Constructed (like lora-packet's "Should Decode Port 0"): FPort 0 -> NwkSKey."""
    nwk = bytes.fromhex("a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4")
    phy = build_uplink(UplinkSpec(0xA1B2C3D4, 10, 0, b"\x02"), nwk, LP_APP)
    frame = parse_data_frame(phy)
    assert frame.frm_payload != b"\x02"
    assert decrypt_payload(frame, 10, nwk, LP_APP) == b"\x02"


def test_fopts_are_skipped_and_counted_in_the_mic() -> None:
    """Constructed: FOptsLen 2 (a LinkCheckReq and a DevStatusAns byte) before FPort."""
    phy = build_uplink(UplinkSpec(0x26011BDA, 7, 2, b"\x01\x02", fopts=b"\x02\x06"), LP_NWK,
                       LP_APP)
    frame = parse_data_frame(phy)
    assert (frame.fopts, frame.fport, frame.fctrl & 0x0F) == (b"\x02\x06", 2, 2)
    assert frame_mic_valid(frame, LP_NWK, 7)
    assert decrypt_payload(frame, 7, LP_NWK, LP_APP) == b"\x01\x02"


BAD_FRAMES = [
    pytest.param("40F17DBE490002", "phy_truncated", id="shorter than a data frame"),
    pytest.param("40F17DBE490F02000102030405", "phy_truncated", id="FOptsLen past the MIC"),
    pytest.param("00" * 23, "unsupported_mtype", id="join-request"),
    pytest.param("E0" + "00" * 12, "unsupported_mtype", id="proprietary"),
    pytest.param("41F17DBE4900020001954378762B11FF0D", "bad_major", id="major 1"),
]


@pytest.mark.parametrize(("phy_hex", "reason"), BAD_FRAMES)
def test_bad_frames_name_their_reason(phy_hex: str, reason: str) -> None:
    with pytest.raises(LorawanError) as caught:
        parse_data_frame(bytes.fromhex(phy_hex))
    assert caught.value.reason == reason


# The Things Network v2 utils/fcnt/fcnt_test.go TestGetFullFCnt, GetFull(last, lsb): the cases
# where the counter moves on. TTN also maps an equal lsb to the same counter (GetFull(0, 0) ==
# 0); here a frame must advance the counter, so that is the next epoch and check_uplink names
# it a retransmission (test below).
@pytest.mark.parametrize(("last", "fcnt16", "full"), [
    (0, 1, 1), (0, 65535, 65535), (2000, 0, 65536), (2000, 1, 65537), (65536, 1, 65537),
    (524287, 0, 524288), (524287, 1, 524289), (524288, 1, 524289),
])
def test_reconstruct_fcnt_ttn_vectors(last: int, fcnt16: int, full: int) -> None:
    assert reconstruct_fcnt(last, fcnt16) == full


@pytest.mark.parametrize(("last", "fcnt16", "full"), [
    (None, 7, 7), (0xFFFE, 0xFFFF, 0xFFFF), (0xFFFF, 0x0000, 0x10000), (0xFFFF, 0x0005, 0x10005),
    (0x1_FFFF, 0x0001, 0x2_0001), (70000, 70000 & 0xFFFF, 70000 + 0x10000),
])
def test_reconstruct_fcnt_rollover(last: int | None, fcnt16: int, full: int) -> None:
    """Constructed: the 16-bit counter wraps and the 32-bit one carries on."""
    assert reconstruct_fcnt(last, fcnt16) == full


def _frame(fcnt: int, payload: bytes = b"\x01") -> tuple[bytes, FcntState]:
    phy = build_uplink(UplinkSpec(0x26011BDA, fcnt, 2, payload), LP_NWK, LP_APP)
    return phy, FcntState(fcnt, phy[-4:])


def test_rollover_mic_uses_the_32_bit_counter() -> None:
    """Constructed: FCnt 65536 sends 0000 on air; its MIC only matches under 65536."""
    phy, _ = _frame(0x10000)
    frame = parse_data_frame(phy)
    assert frame.fcnt16 == 0
    assert frame_mic_valid(frame, LP_NWK, 0x10000) and not frame_mic_valid(frame, LP_NWK, 0)
    assert check_uplink(frame, LP_NWK, FcntState(0xFFFF, b"\0" * 4)) == 0x10000
    assert decrypt_payload(frame, 0x10000, LP_NWK, LP_APP) == b"\x01"


def test_check_uplink_accepts_forward_and_names_every_rejection() -> None:
    first, state = _frame(100)
    assert check_uplink(parse_data_frame(first), LP_NWK, None) == 100
    assert check_uplink(parse_data_frame(_frame(101)[0]), LP_NWK, state) == 101
    assert check_uplink(parse_data_frame(_frame(100 + 16384)[0]), LP_NWK, state) == 16484
    cases = {
        "retransmission": first,
        "replayed_fcnt": _frame(99)[0],
        "fcnt_gap": _frame(100 + 16385)[0],
        "bad_mic": first[:-1] + bytes([first[-1] ^ 1]),
    }
    for reason, phy in cases.items():
        with pytest.raises(LorawanError) as caught:
            check_uplink(parse_data_frame(phy), LP_NWK, state)
        assert caught.value.reason == reason, reason
    same_counter_other_payload = _frame(100, b"\x02")[0]
    with pytest.raises(LorawanError, match="replayed_fcnt"):
        check_uplink(parse_data_frame(same_counter_other_payload), LP_NWK, state)


def test_replay_of_a_frame_from_the_previous_epoch() -> None:
    """Constructed: at 70000 a frame with FCnt 4564 (same low bits as 70100) is a replay."""
    old = _frame(70100 - 0x10000)[0]
    with pytest.raises(LorawanError, match="replayed_fcnt"):
        check_uplink(parse_data_frame(old), LP_NWK, FcntState(70000, b"\0" * 4))


def test_counter_exhausted() -> None:
    phy, _ = _frame(0xFFFF)
    with pytest.raises(LorawanError, match="fcnt_exhausted"):
        check_uplink(parse_data_frame(phy), LP_NWK, FcntState(0xFFFF_FFFF, b"\0" * 4))


@given(st.binary(max_size=80))
def test_fuzz_random_bytes_never_crash_the_parser(data: bytes) -> None:
    try:
        frame = parse_data_frame(data)
    except LorawanError as err:
        assert err.reason in {"phy_truncated", "unsupported_mtype", "bad_major"}
        return
    assert frame.raw == data and len(frame.mic) == 4


@given(dev_addr=st.integers(0, 2**32 - 1), fcnt=st.integers(0, 2**32 - 1),
       fport=st.one_of(st.none(), st.integers(0, 255)), payload=st.binary(max_size=64),
       fopts=st.binary(max_size=15), confirmed=st.booleans())
def test_fuzz_build_parse_round_trip(dev_addr: int, fcnt: int, fport: int | None,
                                     payload: bytes, fopts: bytes, confirmed: bool) -> None:
    payload = payload if fport is not None else b""
    phy = build_uplink(UplinkSpec(dev_addr, fcnt, fport, payload, confirmed, fopts=fopts),
                       LP_NWK, LP_APP)
    frame = parse_data_frame(phy)
    assert (frame.dev_addr, frame.fcnt16, frame.fport, frame.fopts, frame.confirmed) == (
        dev_addr, fcnt & 0xFFFF, fport, fopts, confirmed)
    assert frame_mic_valid(frame, LP_NWK, fcnt)
    assert decrypt_payload(frame, fcnt, LP_NWK, LP_APP) == payload


@given(st.binary(max_size=100), st.integers(0, 2**32 - 1), st.booleans())
def test_fuzz_crypt_is_an_involution(payload: bytes, fcnt: int, uplink: bool) -> None:
    once = crypt_frm_payload(LP_APP, payload, 0x01020304, fcnt, uplink)
    assert len(once) == len(payload)
    assert crypt_frm_payload(LP_APP, once, 0x01020304, fcnt, uplink) == payload
