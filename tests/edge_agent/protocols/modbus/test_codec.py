"""Register codec: golden layouts from the Modbus conventions, then round trips."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_profiles.schema import ByteOrder, DataType, Point, WordOrder
from edge_agent.errors import FrameError
from edge_agent.protocols.modbus.codec import (
    decode_point,
    decode_words,
    encode_point,
    encode_words,
    shortest_float32,
)

B, L = ByteOrder.big, ByteOrder.little
WB, WL = WordOrder.big, WordOrder.little

GOLDEN = [
    # (type, byte order, word order, registers, value) — float 1.0 is 0x3F800000 = A B C D
    pytest.param(DataType.float32, B, WB, [0x3F80, 0x0000], 1.0, id="float32-ABCD"),
    pytest.param(DataType.float32, B, WL, [0x0000, 0x3F80], 1.0, id="float32-CDAB"),
    pytest.param(DataType.float32, L, WB, [0x803F, 0x0000], 1.0, id="float32-BADC"),
    pytest.param(DataType.float32, L, WL, [0x0000, 0x803F], 1.0, id="float32-DCBA"),
    pytest.param(DataType.float32, B, WB, [0x409A, 0x3D71], 4.82, id="float32-4.82-shortest"),
    pytest.param(DataType.int32, B, WB, [0xFFFF, 0xFFFE], -2, id="int32-negative"),
    pytest.param(DataType.int32, B, WL, [0x5678, 0x1234], 0x12345678, id="int32-CDAB"),
    pytest.param(DataType.uint32, B, WB, [0x0001, 0x0000], 65536, id="uint32-high-word"),
    pytest.param(DataType.uint32, L, WL, [0x7856, 0x3412], 0x12345678, id="uint32-DCBA"),
    pytest.param(DataType.int16, B, WB, [0xFF38], -200, id="int16-negative"),
    pytest.param(DataType.int16, L, WB, [0x38FF], -200, id="int16-byte-swapped"),
    pytest.param(DataType.uint16, B, WB, [0xFFFF], 65535, id="uint16-max"),
]


@pytest.mark.parametrize(("data_type", "byte_order", "word_order", "words", "value"), GOLDEN)
def test_golden_layouts(data_type: DataType, byte_order: ByteOrder, word_order: WordOrder,
                        words: list[int], value: float) -> None:
    assert decode_words(words, data_type, byte_order, word_order) == value
    assert encode_words(value, data_type, byte_order, word_order) == words


ORDERS = st.tuples(st.sampled_from(list(ByteOrder)), st.sampled_from(list(WordOrder)))


@given(st.integers(-(2**31), 2**31 - 1), ORDERS)
def test_int32_round_trip(value: int, orders: tuple[ByteOrder, WordOrder]) -> None:
    words = encode_words(value, DataType.int32, *orders)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode_words(words, DataType.int32, *orders) == value


@given(st.integers(0, 2**32 - 1), ORDERS)
def test_uint32_round_trip(value: int, orders: tuple[ByteOrder, WordOrder]) -> None:
    assert decode_words(encode_words(value, DataType.uint32, *orders), DataType.uint32,
                        *orders) == value


@given(st.integers(-(2**15), 2**15 - 1), st.sampled_from(list(ByteOrder)))
def test_int16_round_trip(value: int, byte_order: ByteOrder) -> None:
    assert decode_words(encode_words(value, DataType.int16, byte_order), DataType.int16,
                        byte_order) == value


@given(st.floats(width=32, allow_nan=False), ORDERS)
def test_float32_round_trip_is_the_same_float32(value: float,
                                                orders: tuple[ByteOrder, WordOrder]) -> None:
    decoded = decode_words(encode_words(value, DataType.float32, *orders), DataType.float32,
                           *orders)
    assert struct.pack(">f", decoded) == struct.pack(">f", value)


def test_float32_nan_passes_through() -> None:
    assert math.isnan(decode_words([0x7FC0, 0x0000], DataType.float32))


def test_shortest_float32_keeps_decimal_text() -> None:
    stored = struct.unpack(">f", struct.pack(">f", 220.1))[0]
    assert stored != 220.1
    assert shortest_float32(stored) == 220.1


@pytest.mark.parametrize(("value", "data_type"), [(70000, DataType.uint16), (-1, DataType.uint16),
                                                  (2**32, DataType.uint32)])
def test_values_that_do_not_fit_are_errors(value: int, data_type: DataType) -> None:
    with pytest.raises(FrameError, match="does not fit"):
        encode_words(value, data_type)


def test_wrong_register_count_is_an_error() -> None:
    with pytest.raises(FrameError, match="needs 2 registers"):
        decode_words([1], DataType.float32)


def _point(**kw: object) -> Point:
    base: dict[str, object] = {"name": "p", "label_zh": "点", "register_type": "holding",
                               "address": 10, "type": "uint16"}
    return Point.model_validate(base | kw)


@pytest.mark.parametrize("bit", range(16))
def test_bit_points_read_and_write_only_their_bit(bit: int) -> None:
    point = _point(type="bool", bit=bit)
    others = 0b1010_1010_1010_1010 & ~(1 << bit)
    word = encode_point(point, True, current=others)[0]
    assert word == others | (1 << bit)
    assert decode_point(point, 10, [word]) is True
    cleared = encode_point(point, False, current=word)[0]
    assert cleared == others
    assert decode_point(point, 10, [cleared]) is False


def test_decode_point_at_offset_in_block() -> None:
    point = _point(type="float32", address=12, word_order="little")
    block = [0, 0, 0x0000, 0x3F80, 0]
    assert decode_point(point, 10, block) == 1.0


def test_decode_point_outside_block_is_an_error() -> None:
    with pytest.raises(FrameError, match="outside the block"):
        decode_point(_point(type="uint32", address=13), 10, [0, 0, 0, 0])


def test_coils_decode_as_bools() -> None:
    point = _point(type="bool", register_type="coil", address=3)
    assert decode_point(point, 0, [False, False, False, True]) is True
