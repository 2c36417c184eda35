"""Modbus RTU framing: golden frames from public sources, resynchronisation, fuzzing.

Sources of the literal frames:
  [pymodbus]  pymodbus-dev/pymodbus test/framer/test_framer.py (TestFramerType encode/decode
              tables, test_decode_complicated, test_LRC_CRC; commit 007052cf)
  [simply]    Simply Modbus function code pages (simplymodbus.ca, FC01-FC16): the MODBUS
              Application Protocol V1.1b3 §6 request/response examples sent to slave 17 (0x11)
              with their CRC; the FC03 answer is also in pymodbus test/framer/test_framer.py
              (TestFramerRTU.test_roundtrip)
  [pika]      pikasTech/PikaPython examples/modbus/rtu_master.py (FC03 and FC04 answers)
  [issue]     the CRC example of the RTU issue: 01 03 00 00 00 0A -> CRC C5CD
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import FrameError
from edge_agent.protocols.modbus.rtu_codec import (
    COUNT_LIMITS,
    ExceptionResponse,
    ReadResponse,
    Request,
    RtuFrameError,
    WriteResponse,
    crc16,
    decode_request,
    encode_request,
    encode_response,
    next_request,
    next_response,
    response_length,
    with_crc,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


REQUESTS = [
    pytest.param("01 03 00 00 00 0A C5 CD", Request(1, 3, 0, 10), id="issue-fc03-crc-c5cd"),
    pytest.param("00 03 00 7C 00 02 04 02", Request(0, 3, 0x7C, 2), id="pymodbus-fc03-unit0"),
    pytest.param("11 03 00 7C 00 02 07 43", Request(17, 3, 0x7C, 2), id="pymodbus-fc03-unit17"),
    pytest.param("11 01 00 13 00 25 0E 84", Request(17, 1, 0x13, 37), id="simply-fc01"),
    pytest.param("11 02 00 C4 00 16 BA A9", Request(17, 2, 0xC4, 22), id="simply-fc02"),
    pytest.param("11 03 00 6B 00 03 76 87", Request(17, 3, 0x6B, 3), id="simply-fc03"),
    pytest.param("11 04 00 08 00 01 B2 98", Request(17, 4, 0x08, 1), id="simply-fc04"),
    pytest.param("11 05 00 AC FF 00 4E 8B", Request(17, 5, 0xAC, 1, (1,)), id="simply-fc05"),
    pytest.param("11 06 00 01 00 03 9A 9B", Request(17, 6, 0x01, 1, (3,)), id="simply-fc06"),
    pytest.param("11 0F 00 13 00 0A 02 CD 01 BF 0B",
                 Request(17, 15, 0x13, 10, (1, 0, 1, 1, 0, 0, 1, 1, 1, 0)), id="simply-fc15"),
    pytest.param("11 10 00 01 00 02 04 00 0A 01 02 C6 F0",
                 Request(17, 16, 0x01, 2, (0x000A, 0x0102)), id="simply-fc16"),
]

RESPONSES = [
    pytest.param("00 03 04 00 8D 00 8E FA BC", Request(0, 3, 0x7C, 2),
                 ReadResponse(0, 3, (0x8D, 0x8E)), id="pymodbus-fc03-unit0"),
    pytest.param("11 03 04 00 8D 00 8E FB BD", Request(17, 3, 0x7C, 2),
                 ReadResponse(17, 3, (0x8D, 0x8E)), id="pymodbus-fc03-unit17"),
    pytest.param("00 83 02 91 31", Request(0, 3, 0x7C, 2), ExceptionResponse(0, 3, 2),
                 id="pymodbus-exception-unit0"),
    pytest.param("11 83 02 C1 34", Request(17, 3, 0x7C, 2), ExceptionResponse(17, 3, 2),
                 id="pymodbus-exception-unit17"),
    pytest.param("02 01 01 00 51 CC", Request(2, 1, 0, 1), ReadResponse(2, 1, (0,)),
                 id="pymodbus-fc01-one-byte"),
    pytest.param("01 01 03 01 00 0A ED 89", Request(1, 1, 0, 20),
                 ReadResponse(1, 1, (1,) + (0,) * 16 + (1, 0, 1)), id="pymodbus-fc01-3-bytes"),
    pytest.param("11 01 05 CD 6B B2 0E 1B 45 E6", Request(17, 1, 0x13, 37),
                 ReadResponse(17, 1, (1, 0, 1, 1, 0, 0, 1, 1,  1, 1, 0, 1, 0, 1, 1, 0,
                                      0, 1, 0, 0, 1, 1, 0, 1,  0, 1, 1, 1, 0, 0, 0, 0,
                                      1, 1, 0, 1, 1)), id="simply-fc01"),
    pytest.param("11 02 03 AC DB 35 20 18", Request(17, 2, 0xC4, 22),
                 ReadResponse(17, 2, (0, 0, 1, 1, 0, 1, 0, 1,  1, 1, 0, 1, 1, 0, 1, 1,
                                      1, 0, 1, 0, 1, 1)), id="simply-fc02"),
    pytest.param("11 03 06 AE 41 56 52 43 40 49 AD", Request(17, 3, 0x6B, 3),
                 ReadResponse(17, 3, (0xAE41, 0x5652, 0x4340)), id="simply-fc03"),
    pytest.param("11 04 02 00 0A F8 F4", Request(17, 4, 0x08, 1),
                 ReadResponse(17, 4, (10,)), id="simply-fc04"),
    pytest.param("11 05 00 AC FF 00 4E 8B", Request(17, 5, 0xAC, 1, (1,)),
                 WriteResponse(17, 5, 0xAC, 1), id="simply-fc05-echo"),
    pytest.param("11 06 00 01 00 03 9A 9B", Request(17, 6, 0x01, 1, (3,)),
                 WriteResponse(17, 6, 0x01, 3), id="simply-fc06-echo"),
    pytest.param("11 0F 00 13 00 0A 26 99", Request(17, 15, 0x13, 10, (1,) * 10),
                 WriteResponse(17, 15, 0x13, 10), id="simply-fc15"),
    pytest.param("11 10 00 01 00 02 12 98", Request(17, 16, 0x01, 2, (0, 0)),
                 WriteResponse(17, 16, 0x01, 2), id="simply-fc16"),
    pytest.param("01 03 14 00 00 00 00 04 D2 00 00 00 00 00 7B 00 00 00 00 00 00 00 00 E5 0B",
                 Request(1, 3, 0, 10), ReadResponse(1, 3, (0, 0, 1234, 0, 0, 123, 0, 0, 0, 0)),
                 id="pika-fc03-10-registers"),
    pytest.param("01 04 04 00 00 08 E6 7D CE", Request(1, 4, 0, 2),
                 ReadResponse(1, 4, (0, 0x08E6)), id="pika-fc04"),
]


def test_crc_vectors() -> None:
    assert crc16(h("01 03 00 00 00 0A")) == 0xCDC5  # [issue]: sent as C5 CD
    assert with_crc(h("12 34 23 45 34 56 45 67"))[-2:] == h("E2 DB")  # [pymodbus] test_LRC_CRC
    assert crc16(b"123456789") == 0x4B37  # the CRC-16/MODBUS check value of the CRC catalogue


@pytest.mark.parametrize(("adu", "request_"), REQUESTS)
def test_golden_requests(adu: str, request_: Request) -> None:
    assert encode_request(request_) == h(adu)
    assert decode_request(h(adu)) == request_
    assert next_request(h(adu)) == (request_, len(h(adu)))


@pytest.mark.parametrize(("adu", "request_", "response"), RESPONSES)
def test_golden_responses(adu: str, request_: Request, response: object) -> None:
    frame = h(adu)
    assert next_response(frame, request_) == (response, len(frame))
    assert encode_response(response) == frame  # type: ignore[arg-type]
    if not isinstance(response, ExceptionResponse):
        assert response_length(request_) == len(frame)


@pytest.mark.parametrize(("adu", "request_", "response"), RESPONSES)
def test_every_partial_response_asks_for_more(adu: str, request_: Request,
                                              response: object) -> None:
    frame = h(adu)
    for cut in range(len(frame)):
        assert next_response(frame[:cut], request_) == (None, 0)


def test_bad_crc_is_rejected_and_the_next_frame_found() -> None:
    # [pymodbus] test_decode_complicated: bad CRC followed by a good frame
    request = Request(0, 3, 0x7C, 2)
    stream = bytearray(h("00 83 02 91 21  00 83 02 91 31"))
    with pytest.raises(RtuFrameError) as err:
        next_response(stream, request)
    assert err.value.reason == "bad_crc" and err.value.consumed == 1
    del stream[:1]
    assert next_response(stream, request) == (None, 4)  # garbage up to the next candidate
    del stream[:4]
    assert next_response(stream, request) == (ExceptionResponse(0, 3, 2), 5)


def test_dummy_char_inside_a_frame_is_a_bad_crc() -> None:
    # [pymodbus] test_decode_complicated: "dummy char in stream, bad crc"
    with pytest.raises(RtuFrameError, match="bad_crc"):
        next_response(h("00 83 02 F0 91 31"), Request(0, 3, 0x7C, 2))


def test_answer_of_another_unit_is_garbage() -> None:
    other = h("11 03 04 00 8D 00 8E FB BD")
    assert next_response(other, Request(1, 3, 0x7C, 2)) == (None, len(other))


def test_false_start_at_the_end_of_input_is_skipped() -> None:
    request = Request(1, 3, 0, 2)
    answer = with_crc(h("01 03 04 00 01 00 02"))
    stream = h("01 03 04") + answer  # noise that looks like the head of the answer
    with pytest.raises(RtuFrameError, match="bad_crc"):
        next_response(stream, request)
    assert next_response(stream[:5], request) == (None, 0)
    assert next_response(stream[:5], request, at_end=True) == (None, 1)


@pytest.mark.parametrize(("request_", "why"), [
    (Request(248, 3, 0, 1), "unit"),
    (Request(1, 3, 0, 126), "1..125"),
    (Request(1, 1, 0, 2001), "1..2000"),
    (Request(1, 3, 65535, 2), "address"),
    (Request(1, 7, 0, 1), "not supported"),
    (Request(1, 6, 0, 1, (70000,)), "one value"),
    (Request(1, 16, 0, 2, (1,)), "needs 2 values"),
])
def test_invalid_requests_are_refused(request_: Request, why: str) -> None:
    with pytest.raises(RtuFrameError, match=why):
        encode_request(request_)


def test_bad_coil_value_and_byte_count_are_rejected() -> None:
    with pytest.raises(RtuFrameError, match="bad_value"):
        decode_request(with_crc(h("11 05 00 AC 12 34")))
    with pytest.raises(RtuFrameError, match="bad_length"):
        decode_request(with_crc(h("11 10 00 01 00 03 04 00 0A 01 02")))


# -- fuzz ---------------------------------------------------------------------------------

read_requests = st.builds(
    Request, unit=st.integers(1, 247), function=st.sampled_from([1, 2, 3, 4]),
    address=st.integers(0, 60000), count=st.integers(1, 125))


@st.composite
def answered(draw: st.DrawFn) -> tuple[Request, bytes]:
    request = draw(read_requests)
    if draw(st.booleans()):
        return request, encode_response(ExceptionResponse(request.unit, request.function,
                                                          draw(st.integers(1, 11))))
    top = 1 if request.function in {1, 2} else 0xFFFF
    values = draw(st.lists(st.integers(0, top), min_size=request.count,
                           max_size=request.count))
    return request, encode_response(ReadResponse(request.unit, request.function,
                                                 tuple(values)))


@given(st.binary(max_size=300), read_requests, st.booleans())
def test_random_bytes_never_crash_the_response_parser(data: bytes, request: Request,
                                                      at_end: bool) -> None:
    try:
        frame, used = next_response(data, request, at_end=at_end)
    except RtuFrameError as err:
        assert 1 <= err.consumed <= len(data)
    else:
        assert 0 <= used <= len(data)
        assert frame is None or used > 0


@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_never_crash_the_request_parser(data: bytes, at_end: bool) -> None:
    try:
        frame, used = next_request(data, at_end=at_end)
    except RtuFrameError as err:
        assert 1 <= err.consumed <= len(data)
    else:
        assert 0 <= used <= len(data) and (frame is None or used > 0)


def _drain(stream: bytearray, request: Request) -> object:
    """Parse as the transport does at the timeout: skip whatever is not the answer."""
    while stream:
        try:
            frame, used = next_response(stream, request, at_end=True)
        except FrameError as err:
            frame, used = None, err.consumed  # type: ignore[attr-defined]
        del stream[:used]
        if frame is not None:
            return frame
    return None


@settings(max_examples=300)
@given(answered(), st.binary(max_size=40), st.binary(max_size=40))
def test_answer_in_noise_is_found(case: tuple[Request, bytes], before: bytes,
                                  after: bytes) -> None:
    request, answer = case
    expected, _ = next_response(answer, request)
    assert _drain(bytearray(before + answer + after), request) == expected


@settings(max_examples=300)
@given(st.builds(Request, unit=st.integers(0, 247), function=st.sampled_from([1, 2, 3, 4]),
                 address=st.integers(0, 60000), count=st.integers(1, 125)),
       st.binary(max_size=40))
def test_request_after_noise_is_found(request: Request, before: bytes) -> None:
    stream = bytearray(before + encode_request(request))
    found = None
    while stream and found is None:
        try:
            found, used = next_request(stream, at_end=True)  # the line went silent after it
        except RtuFrameError as err:
            used = err.consumed
        del stream[:used]
    assert found == request


@given(st.sampled_from(sorted(COUNT_LIMITS)), st.data())
def test_requests_round_trip(function: int, data: st.DataObject) -> None:
    count = data.draw(st.integers(1, COUNT_LIMITS[function]))
    values: tuple[int, ...] = ()
    if function in {15, 16}:
        top = 1 if function == 15 else 0xFFFF
        values = tuple(data.draw(st.lists(st.integers(0, top), min_size=count,
                                          max_size=count)))
    request = Request(data.draw(st.integers(0, 247)), function,
                      data.draw(st.integers(0, 65536 - count)), count, values)
    assert decode_request(encode_request(request)) == request
