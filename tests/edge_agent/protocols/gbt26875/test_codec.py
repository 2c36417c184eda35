"""GB/T 26875.3 codec: golden frames from public sources, stream resynchronisation, fuzzing.

Sources of the golden frames (each test id names its source):
- "actorlancer-*": the frame examples in ActorLancer/GB-T-26875.3.2011-rs, GB26875文档.md,
  section 示例 (a UITD at 79 03 00 00 00 00 and a centre at 38 5B 01 00 00 00 on 2012-09-26;
  the centre's confirm and deny answers). Their checksums were verified by hand.
- "shootingfans-*": github.com/shootingfans/codec_gb26875_3_2011, codec/reader_decoder_test.go
  (a whole frame, sent once with checksum 0x63 and then with the correct 0x68) and
  codec/codec_test.go TestDecodeAppData (application data units with their decoded values;
  their timestamps are epoch seconds of UTC+8 local time).
- "constructed": built here from the layout in clause 6.6 (said so where used).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles.schema import Gbt26875Protocol
from edge_agent.errors import FrameError
from edge_agent.protocols.gbt26875.codec import (
    FIELDS,
    AnalogValue,
    Command,
    ComponentState,
    DataUnit,
    Frame,
    FrameRejected,
    Header,
    OtherObject,
    Stamp,
    SystemState,
    UitdState,
    decode_frame,
    decode_stream,
    decode_unit,
    decoded_fields,
    encode_frame,
    encode_unit,
    format_address,
    parse_address,
    reply_header,
    unit_of,
)

UITD, CENTRE = 0x000000000379, 0x000000015B38
T2012 = Stamp(2012, 9, 26, 9, 58, 2)
SENT_2012 = Stamp(2012, 9, 26, 9, 58, 32)
T2021 = Stamp(2021, 7, 2, 9, 0, 4)  # 04 00 09 02 07 15 = epoch 1625187604 at UTC+8
DESC = "7楼02室会议室烟感"
DESC_HEX = "37 c2 a5 30 32 ca d2 bb e1 d2 e9 ca d2 d1 cc b8 d0" + " 00" * 14

AL_FIRE = ("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 30 00 02"
           " 02 01 01 01 28 0A 00 02 00 02 00" + " 20" * 30 + " 00 02 3A 09 1A 09 0C 46 23 23")
AL_CONFIRM = ("40 40 01 00 01 01 23 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 00 00 03"
              " AB 23 23")
AL_DENY = ("40 40 01 00 01 01 23 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 00 00 06"
           " AE 23 23")
SF_FRAME = ("40 40 00 00 01 01 18 0d 11 16 0a 14 00 00 00 00 00 00 06 05 04 03 02 01 30 00 02"
            " 02 01 01 03 00 d9 00 06 00 02 00 a3 c1 c7 f8 a3 b1 b2 e3 df c8 b2 b8 d7 df c0 c8"
            + " 00" * 15 + " 30 12 13 01 08 14 68 23 23")
SF_BAD_CHECKSUM = SF_FRAME[:-9] + "63 23 23"


def _uitd_header(command: int = Command.SEND_DATA) -> Header:
    return Header(1, SENT_2012, UITD, CENTRE, command)


GOLDEN_FRAMES = [
    pytest.param(AL_FIRE, _uitd_header(), unit_of(2, ComponentState(
        1, 1, 40, 0x0002000A, 0x0002, "", T2012)), id="actorlancer-smoke-detector-fire-alarm"),
    pytest.param(AL_CONFIRM, Header(1, Stamp(2012, 9, 26, 9, 58, 35), CENTRE, UITD,
                                    Command.CONFIRM), None, id="actorlancer-centre-confirm"),
    pytest.param(AL_DENY, Header(1, Stamp(2012, 9, 26, 9, 58, 35), CENTRE, UITD, Command.DENY),
                 None, id="actorlancer-centre-deny"),
    pytest.param("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 09 00"
                 " 02 15 01 08 02 3A 09 1A 09 0C 42 23 23", _uitd_header(),
                 unit_of(21, UitdState(0x08, T2012)), id="actorlancer-uitd-main-power-fault"),
    pytest.param("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 0A 00"
                 " 02 18 01 20 01 02 3A 09 1A 09 0C 5F 23 23", _uitd_header(),
                 unit_of(24, OtherObject(bytes.fromhex("20 01 02 3A 09 1A 09 0C"))),
                 id="actorlancer-uitd-operation-record"),
    pytest.param("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 04 00"
                 " 02 19 01 01 01 C7 23 23", _uitd_header(),
                 unit_of(25, OtherObject(b"\x01\x01")), id="actorlancer-uitd-software-version"),
    pytest.param("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 09 00"
                 " 05 15 01 08 02 3A 09 1A 09 0C 45 23 23", _uitd_header(Command.RESPONSE),
                 unit_of(21, UitdState(0x08, T2012)), id="actorlancer-uitd-state-response"),
    pytest.param("40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 03 00"
                 " 04 51 01 00 FE 23 23", Header(1, SENT_2012, CENTRE, UITD, Command.REQUEST),
                 DataUnit(81, 1, (), b"\x00"), id="actorlancer-centre-reads-uitd-state"),
    pytest.param(SF_FRAME, Header(0, Stamp(2020, 10, 22, 17, 13, 24), 0, 0x010203040506,
                                  Command.SEND_DATA),
                 unit_of(2, ComponentState(1, 3, 0, 0x000600D9, 0x0002, "Ａ区１层呷哺走廊",
                                           Stamp(2020, 8, 1, 19, 18, 48))),
                 id="shootingfans-reader-decoder-frame"),
]


@pytest.mark.parametrize(("hex_frame", "header", "unit"), GOLDEN_FRAMES)
def test_golden_frames_decode(hex_frame: str, header: Header, unit: DataUnit | None) -> None:
    assert decode_frame(bytes.fromhex(hex_frame)) == Frame(header, unit)


@pytest.mark.parametrize(("hex_frame", "header", "unit"), [
    p for p in GOLDEN_FRAMES if p.id != "actorlancer-smoke-detector-fire-alarm"])
def test_golden_frames_encode_byte_exact(hex_frame: str, header: Header,
                                         unit: DataUnit | None) -> None:
    # (the fire-alarm example pads its description with spaces; this codec pads with NUL)
    app_data = encode_unit(unit) if unit is not None else b""
    assert encode_frame(header, app_data) == bytes.fromhex(hex_frame)


def test_confirm_and_deny_answer_the_send_with_its_serial_and_swapped_addresses() -> None:
    sent = decode_frame(bytes.fromhex(AL_FIRE)).header
    at = Stamp(2012, 9, 26, 9, 58, 35)
    assert encode_frame(reply_header(sent, Command.CONFIRM, at)) == bytes.fromhex(AL_CONFIRM)
    assert encode_frame(reply_header(sent, Command.DENY, at)) == bytes.fromhex(AL_DENY)


def test_example_fire_alarm_fields_and_time() -> None:
    (obj,) = decode_frame(bytes.fromhex(AL_FIRE)).unit.objects  # type: ignore[union-attr]
    fields = decoded_fields(obj)
    assert fields["fire_alarm"] is True and fields["fault"] is False
    assert fields["normal"] is False and fields["state"] == 2
    assert obj.at.to_epoch_ms() == 1348624682000  # type: ignore[union-attr]  # 09:58:02 +08


GOLDEN_UNITS = [
    pytest.param("01 01 01 02 04 02 04 00 09 02 07 15",
                 unit_of(1, SystemState(1, 2, 0x0204, T2021)), id="shootingfans-system-state"),
    pytest.param("01 02 01 02 04 02 04 00 09 02 07 15 0d 03 05 01 05 00 09 02 07 15",
                 unit_of(1, SystemState(1, 2, 0x0204, T2021),
                         SystemState(13, 3, 0x0105, Stamp(2021, 7, 2, 9, 0, 5))),
                 id="shootingfans-two-system-states"),
    pytest.param(f"02 01 01 02 79 01 02 03 04 04 02 {DESC_HEX} 04 00 09 02 07 15",
                 unit_of(2, ComponentState(1, 2, 121, 0x04030201, 0x0204, DESC, T2021)),
                 id="shootingfans-component-state"),
    pytest.param("03 01 01 02 28 01 02 03 04 03 20 03 04 00 09 02 07 15",
                 unit_of(3, AnalogValue(1, 2, 40, 0x04030201, 3, 800, T2021)),
                 id="shootingfans-analog-temperature"),
    pytest.param("03 02 01 02 28 01 02 03 04 03 20 03 04 00 09 02 07 15"
                 " 0d 03 79 03 04 05 06 02 01 50 05 00 09 02 07 15",
                 unit_of(3, AnalogValue(1, 2, 40, 0x04030201, 3, 800, T2021),
                         AnalogValue(13, 3, 121, 0x06050403, 2, 0x5001,
                                     Stamp(2021, 7, 2, 9, 0, 5))),
                 id="shootingfans-two-analog-values"),
    pytest.param("15 01 08 04 00 09 02 07 15", unit_of(21, UitdState(8, T2021)),
                 id="shootingfans-uitd-state"),
    pytest.param("04 01 01 02 84 fa 04 00 09 02 07 15",
                 unit_of(4, OtherObject(bytes.fromhex("01 02 84 fa 04 00 09 02 07 15"))),
                 id="shootingfans-operation-record"),
    pytest.param(f"06 01 01 02 1e {DESC_HEX[:-3]}",
                 unit_of(6, OtherObject(bytes.fromhex(f"01 02 1e {DESC_HEX[:-3]}"))),
                 id="shootingfans-system-configuration"),
    pytest.param("03 01 0b 01 00 07 00 00 00 05 ac 0d 04 00 09 02 07 15",
                 unit_of(3, AnalogValue(11, 1, 0, 7, 5, 3500, T2021)),
                 id="constructed-hydrant-pressure-350kPa"),
    pytest.param("03 01 0b 01 00 07 00 00 00 03 38 ff 04 00 09 02 07 15",
                 unit_of(3, AnalogValue(11, 1, 0, 7, 3, -200, T2021)),
                 id="constructed-negative-temperature"),
]


@pytest.mark.parametrize(("hex_unit", "unit"), GOLDEN_UNITS)
def test_golden_data_units(hex_unit: str, unit: DataUnit) -> None:
    data = bytes.fromhex(hex_unit)
    assert decode_unit(data) == unit
    assert encode_unit(unit) == data


def test_shootingfans_timestamps_are_utc_plus_8() -> None:
    assert T2021.to_epoch_ms() == 1625187604000
    assert Stamp(2020, 8, 1, 19, 18, 48).to_epoch_ms() == 1596280728000
    assert Stamp.from_epoch_ms(1596280728999) == Stamp(2020, 8, 1, 19, 18, 48)
    assert Stamp.from_epoch_ms(1596280728000, utc_offset_h=0).hour == 11


@pytest.mark.parametrize(("hex_unit", "reason"), [
    pytest.param("06 01 01 01 05 01", "bad_data_unit", id="shootingfans-config-length-invalid"),
    pytest.param("07 01 01 01 28 01 02 03 04 01 05 01", "bad_data_unit",
                 id="shootingfans-component-config-length-invalid"),
    pytest.param("01 01 01 03 04", "bad_data_unit", id="shootingfans-system-state-short"),
    pytest.param("02", "bad_data_unit", id="constructed-type-only"),
    pytest.param("01 02 01 02 04 02 04 00 09 02 07 15", "bad_data_unit",
                 id="constructed-count-says-two-carries-one"),
    pytest.param("01 01 01 02 04 02 04 00 09 1f 02 15", "bad_time",
                 id="constructed-february-31st"),
    pytest.param("15 01 08 04 3c 09 02 07 15", "bad_time", id="constructed-minute-60"),
])
def test_bad_data_units_are_rejected_with_a_reason(hex_unit: str, reason: str) -> None:
    with pytest.raises(FrameRejected) as info:
        decode_unit(bytes.fromhex(hex_unit))
    assert info.value.reason == reason


def test_codec_fields_are_the_profile_schema_fields() -> None:
    assert Gbt26875Protocol.fields == FIELDS


def test_state_and_analog_fields() -> None:
    component = ComponentState(1, 1, 42, 1, 0b1_0000_0111, "", T2021)
    fields = decoded_fields(component)
    assert {k for k, v in fields.items() if v is True} == {"normal", "fire_alarm", "fault",
                                                          "power_fault"}
    system = decoded_fields(SystemState(1, 1, 1 << 8 | 1 << 10, T2021))
    assert system["main_power_fault"] is True and system["bus_fault"] is True
    assert "power_fault" not in system
    assert decoded_fields(AnalogValue(11, 1, 0, 7, 5, 3500, T2021)) == {
        "analog_value": 3500, "analog_pressure_kpa": 3500}
    assert decoded_fields(AnalogValue(11, 1, 0, 7, 200, -1, T2021)) == {"analog_value": -1}
    assert decoded_fields(UitdState(1, T2021)) == {}


def test_addresses_are_12_hex_digits_most_significant_first() -> None:
    assert parse_address("000000000379") == 0x379
    assert format_address(0x15B38) == "000000015B38"
    for bad in ("379", "00000000037G", "0000000003790"):
        with pytest.raises(ValueError, match="12 hex digits"):
            parse_address(bad)


def test_encoding_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(FrameError, match="longer than 31 bytes"):
        encode_unit(unit_of(2, ComponentState(1, 1, 42, 1, 1, "火" * 16, T2021)))
    with pytest.raises(FrameError, match="analog value"):
        encode_unit(unit_of(3, AnalogValue(1, 1, 42, 1, 5, 40_000, T2021)))
    with pytest.raises(FrameError, match="exceeds 1024"):
        encode_frame(_uitd_header(), bytes(1025))
    with pytest.raises(FrameError, match="year"):
        Stamp(2100, 1, 1, 0, 0, 0).encode()


# ---- the stream: partial reads, corruption, resynchronisation ---------------------------

def _drain(stream: bytes | bytearray) -> tuple[list[Frame], list[str], bytearray]:
    """Decode like the listener: (frames, rejection reasons, bytes left waiting)."""
    buf, frames, reasons = bytearray(stream), [], []
    while buf:
        try:
            frame, used = decode_stream(buf)
        except FrameRejected as err:
            assert 0 < err.consumed <= len(buf), err
            reasons.append(err.reason)
            del buf[:err.consumed]
            continue
        if frame is None:
            break
        frames.append(frame)
        del buf[:used]
    return frames, reasons, buf


GOOD = bytes.fromhex(AL_FIRE)
HEARTBEAT = encode_frame(_uitd_header())  # constructed: "send data" with no application data


def test_partial_reads_need_more_until_the_frame_is_whole() -> None:
    for cut in range(len(GOOD)):
        assert decode_stream(GOOD[:cut]) == (None, 0)
    frame, used = decode_stream(GOOD + HEARTBEAT[:5])
    assert used == len(GOOD) and frame is not None


def test_bad_checksum_is_rejected_with_its_header_and_the_next_frame_decodes() -> None:
    bad = bytes.fromhex(SF_BAD_CHECKSUM)
    with pytest.raises(FrameRejected) as info:
        decode_stream(bad + GOOD)
    assert info.value.reason == "bad_checksum" and info.value.consumed == len(bad)
    assert info.value.header is not None and info.value.header.serial == 0
    frames, reasons, left = _drain(bad + GOOD)
    assert reasons == ["bad_checksum"] and len(frames) == 1 and not left


@pytest.mark.parametrize("cut", [5, 26, 27, 40, len(GOOD) - 3, len(GOOD) - 1])
def test_a_truncated_frame_is_dropped_when_the_next_frame_arrives(cut: int) -> None:
    frames, reasons, left = _drain(GOOD[:cut] + HEARTBEAT)
    assert [f.header for f in frames] == [_uitd_header()]
    assert set(reasons) <= {"truncated", "garbage", "bad_end_marker"} and reasons
    assert not left


def test_garbage_between_frames_is_skipped_and_counted() -> None:
    frames, reasons, left = _drain(b"\x00\xffnoise" + GOOD + b"##junk" + HEARTBEAT + b"@")
    assert len(frames) == 2
    assert reasons == ["garbage", "garbage"]
    assert left == b"@"  # a lone '@' may be the start of the next frame


def test_a_stray_at_sign_before_a_frame_costs_rejections_but_not_the_frame() -> None:
    frames, reasons, left = _drain(b"x@" + GOOD + b"@" + HEARTBEAT)
    assert [f.header for f in frames] == [_uitd_header(), _uitd_header()]
    assert reasons and not left


def test_oversized_length_and_bad_end_marker_resync() -> None:
    oversized = bytearray(HEARTBEAT)
    oversized[24:26] = (1025).to_bytes(2, "little")
    frames, reasons, _ = _drain(bytes(oversized) + GOOD)
    assert reasons[0] == "oversized" and len(frames) == 1
    no_end = HEARTBEAT[:-2] + b"$$"
    frames, reasons, _ = _drain(no_end + GOOD)
    assert reasons[0] == "bad_end_marker" and len(frames) == 1


def test_unknown_command_byte_is_rejected_with_its_header() -> None:
    frame = encode_frame(Header(9, SENT_2012, UITD, CENTRE, 0x80))
    with pytest.raises(FrameRejected) as info:
        decode_stream(frame)
    assert info.value.reason == "bad_command" and info.value.header is not None
    assert info.value.header.serial == 9 and info.value.consumed == len(frame)


def test_a_bad_data_unit_in_a_good_frame_names_its_frame_offset() -> None:
    frame = encode_frame(_uitd_header(), bytes.fromhex("01 02 01 02 04 02 04 00 09 02 07 15"))
    with pytest.raises(FrameRejected) as info:
        decode_stream(frame)
    assert info.value.reason == "bad_data_unit" and info.value.offset == 29
    assert info.value.header == _uitd_header()


# ---- fuzzing --------------------------------------------------------------------------

stamps = st.builds(Stamp, st.integers(2000, 2099), st.integers(1, 12), st.integers(1, 28),
                   st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
u8, u32 = st.integers(0, 255), st.integers(0, 0xFFFFFFFF)
objects = st.one_of(
    st.builds(SystemState, u8, u8, st.integers(0, 0xFFFF), stamps),
    st.builds(ComponentState, u8, u8, u8, u32, st.integers(0, 0xFFFF),
              st.text("火警烟感A区1层abc", max_size=10), stamps),
    st.builds(AnalogValue, u8, u8, u8, u32, u8, st.integers(-32768, 32767), stamps),
)
units = st.lists(objects, min_size=1, max_size=5).map(
    lambda objs: unit_of({SystemState: 1, ComponentState: 2, AnalogValue: 3}[type(objs[0])],
                         *[o for o in objs if type(o) is type(objs[0])]))
headers = st.builds(Header, st.integers(0, 0xFFFF), stamps, st.integers(0, 2**48 - 1),
                    st.integers(0, 2**48 - 1), st.sampled_from(list(Command)),
                    st.tuples(u8, u8))
frames = st.builds(lambda h, u: encode_frame(h, encode_unit(u) if u else b""), headers,
                   st.none() | units)


@given(st.binary(max_size=2000))
@settings(max_examples=500)
def test_random_bytes_never_crash_the_stream_decoder(data: bytes) -> None:
    _drain(data)  # only frames, FrameRejected with progress, or "need more"


@given(st.binary(max_size=200).map(lambda b: b"@@" + b), st.integers(0, 2**16 - 1))
def test_random_bytes_after_a_start_marker_never_crash(data: bytes, length: int) -> None:
    buf = bytearray(data.ljust(30, b"\0"))
    buf[24:26] = (length % 1100).to_bytes(2, "little")
    _drain(buf)


@given(headers, units)
def test_frames_round_trip(header: Header, unit: DataUnit) -> None:
    assert decode_frame(encode_frame(header, encode_unit(unit))) == Frame(header, unit)


@given(st.lists(st.tuples(st.binary(max_size=60), frames), min_size=1, max_size=4),
       st.binary(max_size=60), st.lists(st.integers(1, 64), min_size=1, max_size=8))
@settings(max_examples=300)
def test_frames_in_noise_are_all_found_even_in_small_reads(
        parts: list[tuple[bytes, bytes]], tail: bytes, reads: list[int]) -> None:
    stream = b"".join(noise + frame for noise, frame in parts) + tail
    expected = [decode_frame(frame) for _noise, frame in parts]
    buf, found, pos, i = bytearray(), [], 0, 0
    while pos < len(stream):
        size = reads[i % len(reads)]
        buf += stream[pos:pos + size]
        pos, i = pos + size, i + 1
        got, _reasons, buf = _drain(buf)
        found += got
    assert found == expected
