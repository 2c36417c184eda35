"""Hypothesis: random bytes never crash the CJ/T 188 codec, and valid frames in noise are found."""

from __future__ import annotations

import contextlib
from datetime import datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.protocols.cjt188.codec import (
    START,
    Cjt188Error,
    Frame,
    decode_frame,
    decode_stream,
    encode_frame,
)
from edge_agent.protocols.cjt188.metering import (
    MeterClock,
    MeteringData,
    Status,
    decode_metering,
    encode_metering,
    metering_fields,
)

frames = st.builds(Frame, meter_type=st.integers(0, 255), address=st.binary(min_size=7,
                   max_size=7), control=st.integers(0, 255), data=st.binary(max_size=0x64))
noise_without_start = st.binary(max_size=200).map(lambda b: b.replace(bytes([START]), b"\x00"))


def scan(stream: bytes) -> list[tuple[int, int, Frame]]:
    """Decode a whole stream as a transport would: (start, end, frame) of every frame found.
    Only FrameErrors that make progress, or "need more" at the end, are allowed."""
    found: list[tuple[int, int, Frame]] = []
    pos = 0
    while pos < len(stream):
        try:
            frame, consumed = decode_stream(stream[pos:])
        except Cjt188Error as err:
            assert 0 < err.consumed <= len(stream) - pos
            pos += err.consumed
            continue
        if frame is None:
            break
        found.append((pos + consumed - len(encode_frame(frame)), pos + consumed, frame))
        pos += consumed
    return found


@given(st.binary(max_size=600))
def test_random_bytes_never_crash(stream: bytes) -> None:
    for _, _, frame in scan(stream):
        assert decode_frame(encode_frame(frame)) == frame
        with contextlib.suppress(Cjt188Error):
            metering_fields(decode_metering(frame))


@given(st.binary(max_size=300))
def test_random_bytes_after_a_start_byte_never_crash(tail: bytes) -> None:
    scan(bytes([START]) + tail)


@given(frames, st.integers(0, 4))
def test_frame_round_trip(frame: Frame, preamble: int) -> None:
    assert decode_frame(encode_frame(frame, preamble)) == frame


@given(st.lists(st.tuples(noise_without_start, frames), max_size=5), noise_without_start)
def test_frames_in_noise_without_start_bytes_are_all_found(
        parts: list[tuple[bytes, Frame]], tail: bytes) -> None:
    stream = b"".join(noise + encode_frame(frame) for noise, frame in parts) + tail
    assert [f for _, _, f in scan(stream)] == [frame for _, frame in parts]


@given(st.binary(max_size=200), frames, st.binary(max_size=50))
def test_a_frame_in_any_noise_is_found_unless_a_noise_frame_covers_it(
        noise: bytes, frame: Frame, tail: bytes) -> None:
    start = len(noise)
    stream = noise + encode_frame(frame) + tail
    found = scan(stream)
    covered = any(s < start < e for s, e, _ in found)  # a valid frame made of noise + it
    assert (start, start + len(encode_frame(frame)), frame) in found or covered


@given(st.binary(max_size=300), st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_chunked_arrival_finds_the_same_frames(stream: bytes, sizes: list[int]) -> None:
    whole = [f for _, _, f in scan(stream)]
    buffer, found, pos, k = bytearray(), [], 0, 0
    while pos < len(stream):
        step = sizes[k % len(sizes)]
        buffer += stream[pos:pos + step]
        pos, k = pos + step, k + 1
        while True:
            try:
                frame, consumed = decode_stream(buffer)
            except Cjt188Error as err:
                del buffer[:err.consumed]
                continue
            del buffer[:consumed]
            if frame is None:
                break
            found.append(frame)
    assert found == whole


hundredths = st.integers(0, 99_999_999).map(lambda v: Decimal(v).scaleb(-2))
clocks = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    MeterClock.of)
statuses = st.builds(Status, st.integers(0, 255), st.integers(0, 255))


@given(hundredths, st.none() | hundredths, st.none() | clocks, statuses)
def test_water_metering_round_trip(flow: Decimal, settlement: Decimal | None,
                                   clock: MeterClock | None, status: Status) -> None:
    data = MeteringData(cumulative_flow=flow, settlement_flow=settlement, clock=clock,
                        status=status)
    payload = encode_metering(data, meter_type=0x10)
    frame = Frame(0x10, bytes(7), 0x81, b"\x90\x1f\x00" + payload)
    assert decode_metering(decode_frame(encode_frame(frame))) == data


@given(st.binary(min_size=0, max_size=60), st.sampled_from([0x10, 0x20, 0x30]))
def test_random_901F_payloads_only_raise_frame_errors(payload: bytes, meter_type: int) -> None:
    frame = Frame(meter_type, bytes(7), 0x81, b"\x90\x1f\x00" + payload)
    with contextlib.suppress(Cjt188Error):
        metering_fields(decode_metering(frame))
