"""Application payload <-> raw point values, by the profile's byte layout. Pure.

A LoRaWAN profile addresses each point by `byte_offset` in the decrypted FRMPayload, with its
`type` giving the width (bool/int8/uint8 1 byte, int16/uint16 2, int32/uint32/float32 4) and
`byte_order` the order of the whole value's bytes (big = most significant first; little =
least significant first, e.g. a uint32 0x12345678 as 78 56 34 12). A bool point with `bit`
is that bit (0 = least significant) of its byte; without `bit` it is true when the byte is
not 0. Values are raw: scaling happens in edge_agent/scaling.py.

Used for uplinks received through gateways (semtech_udp) and for payloads ChirpStack has
already decrypted (chirpstack).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from device_profiles.schema import ByteOrder, DataType, Point, Profile
from edge_agent.errors import RejectedFrame
from edge_agent.protocols.modbus.codec import shortest_float32

Raw = bool | int | float

_FORMAT: dict[DataType, str] = {
    DataType.int8: "b", DataType.uint8: "B", DataType.int16: "h", DataType.uint16: "H",
    DataType.int32: "i", DataType.uint32: "I", DataType.float32: "f",
}


class PayloadError(RejectedFrame):
    """A payload that does not fit the profile's layout; `reason` is a metric label."""


def _format(point: Point) -> str:
    return ("<" if point.byte_order == ByteOrder.little else ">") + _FORMAT[point.type]


def required_length(profile: Profile) -> int:
    """Bytes a payload must have: the profile's payload_bytes, or the end of the last point."""
    size = getattr(profile.protocol, "payload_bytes", None)
    if size is not None:
        return int(size)
    return max((p.byte_offset or 0) + p.payload_bytes for p in profile.points)


def decode_point(point: Point, payload: bytes) -> Raw:
    """The raw value of one point."""
    start = point.byte_offset or 0
    chunk = payload[start:start + point.payload_bytes]
    if len(chunk) != point.payload_bytes:
        raise PayloadError("payload_length", start, f"point {point.name} needs bytes "
                           f"{start}..{start + point.payload_bytes - 1}")
    if point.type == DataType.bool:
        return bool(chunk[0] >> point.bit & 1) if point.bit is not None else chunk[0] != 0
    (value,) = struct.unpack(_format(point), chunk)
    return shortest_float32(value) if point.type == DataType.float32 else value


def decode_payload(profile: Profile, payload: bytes) -> dict[str, Raw]:
    """Every point of the profile from one plaintext payload; raise PayloadError."""
    size = getattr(profile.protocol, "payload_bytes", None)
    if size is not None and len(payload) != size:
        raise PayloadError("payload_length", min(len(payload), size),
                           f"{len(payload)} bytes, the profile says {size}")
    return {p.name: decode_point(p, payload) for p in profile.points}


def encode_payload(profile: Profile, raw: Mapping[str, Raw]) -> bytes:
    """The payload a device sends for these raw values (simulators and tests).

    Points missing from `raw` are 0; bits of one byte are merged.
    """
    buffer = bytearray(required_length(profile))
    for point in profile.points:
        value = raw.get(point.name, 0)
        start = point.byte_offset or 0
        if point.type == DataType.bool:
            mask = 1 << point.bit if point.bit is not None else 0x01
            buffer[start] = buffer[start] | mask if value else buffer[start] & ~mask & 0xFF
            continue
        try:
            chunk = struct.pack(_format(point), value)
        except struct.error as err:
            raise PayloadError("value_range", start, f"{point.name}={value!r} does not fit "
                               f"{point.type}: {err}") from err
        buffer[start:start + len(chunk)] = chunk
    return bytes(buffer)
