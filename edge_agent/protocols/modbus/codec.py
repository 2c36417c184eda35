"""Modbus register codec: 16-bit words <-> raw values. Pure: no I/O, no time, no logging.

A 32-bit value occupies two registers. With the four common layouts, the float 1.0
(0x3F800000, bytes A=3F B=80 C=00 D=00) reads as:

    word_order  byte_order   registers        name
    big         big          [0x3F80, 0x0000]  ABCD (Modbus standard)
    little      big          [0x0000, 0x3F80]  CDAB ("word swap")
    big         little       [0x803F, 0x0000]  BADC ("byte swap")
    little      little       [0x0000, 0x803F]  DCBA

Raw values are what the device stores; scaling to engineering units is done once, in
edge_agent/scaling.py.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from device_profiles.schema import ByteOrder, DataType, Point, RegisterType, WordOrder
from edge_agent.errors import FrameError

_STRUCT: dict[DataType, str] = {
    DataType.int16: ">h", DataType.uint16: ">H",
    DataType.int32: ">i", DataType.uint32: ">I", DataType.float32: ">f",
}

Raw = bool | int | float


def _words_to_bytes(words: Sequence[int], byte_order: ByteOrder, word_order: WordOrder) -> bytes:
    ordered = list(words) if word_order == WordOrder.big else list(reversed(words))
    chunks = [w.to_bytes(2, "big") for w in ordered]
    if byte_order == ByteOrder.little:
        chunks = [c[::-1] for c in chunks]
    return b"".join(chunks)


def _bytes_to_words(data: bytes, byte_order: ByteOrder, word_order: WordOrder) -> list[int]:
    chunks = [data[i:i + 2] for i in range(0, len(data), 2)]
    if byte_order == ByteOrder.little:
        chunks = [c[::-1] for c in chunks]
    words = [int.from_bytes(c, "big") for c in chunks]
    return words if word_order == WordOrder.big else list(reversed(words))


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same float32 (so 4.82 reads back as 4.82)."""
    if value != value or value in (float("inf"), float("-inf")):
        return value
    packed = struct.pack(">f", value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack(">f", candidate) == packed:
            return candidate
    return value


def decode_words(words: Sequence[int], data_type: DataType, byte_order: ByteOrder = ByteOrder.big,
                 word_order: WordOrder = WordOrder.big) -> int | float:
    """Decode the registers of one numeric value."""
    size = 1 if data_type in {DataType.int16, DataType.uint16} else 2
    if len(words) != size:
        raise FrameError(f"{data_type} needs {size} registers, got {len(words)}")
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise FrameError(f"register value out of range 0..65535: {list(words)}")
    (value,) = struct.unpack(_STRUCT[data_type], _words_to_bytes(words, byte_order, word_order))
    return shortest_float32(value) if data_type == DataType.float32 else value


def encode_words(value: int | float, data_type: DataType, byte_order: ByteOrder = ByteOrder.big,
                 word_order: WordOrder = WordOrder.big) -> list[int]:
    """Encode one numeric raw value into registers; raise FrameError when it does not fit."""
    try:
        data = struct.pack(_STRUCT[data_type], value)
    except struct.error as err:
        raise FrameError(f"{value!r} does not fit {data_type}: {err}") from err
    return _bytes_to_words(data, byte_order, word_order)


def decode_point(point: Point, start: int, values: Sequence[int] | Sequence[bool]) -> Raw:
    """Decode `point` from a block of registers (or bits) that begins at address `start`."""
    offset = point.address - start
    if offset < 0 or offset + point.words > len(values):
        raise FrameError(f"point {point.name} at {point.address} is outside the block "
                         f"{start}..{start + len(values) - 1}")
    if point.register_type in {RegisterType.coil, RegisterType.discrete_input}:
        return bool(values[offset])
    words = [int(v) for v in values[offset:offset + point.words]]
    if point.type == DataType.bool:
        if point.bit is None:
            return words[0] != 0
        if point.byte_order == ByteOrder.little:
            words = _bytes_to_words(words[0].to_bytes(2, "little"), ByteOrder.big, WordOrder.big)
        return bool((words[0] >> point.bit) & 1)
    return decode_words(words, point.type, point.byte_order, point.word_order)


def encode_point(point: Point, raw: Raw, current: int = 0) -> list[int] | list[bool]:
    """Registers (or bits) that hold `raw` for `point`; `current` is the word a bit lives in."""
    if point.register_type in {RegisterType.coil, RegisterType.discrete_input}:
        return [bool(raw)]
    if point.type == DataType.bool:
        if point.bit is None:
            return [1 if raw else 0]
        mask = 1 << point.bit
        if point.byte_order == ByteOrder.little:
            mask = int.from_bytes(mask.to_bytes(2, "big"), "little")
        return [(current | mask) if raw else (current & ~mask & 0xFFFF)]
    return encode_words(raw, point.type, point.byte_order, point.word_order)
