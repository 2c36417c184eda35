"""GB/T 26875.3-2011 frames and application data units. Pure: no I/O, no clock, no logging.

Frame (clause 6.6); multi-byte numbers are little-endian (low byte first):

    ┌──────┬────────┬─────────┬──────┬────────┬────────┬────────┬─────────┬───────────┬─────┬──────┐
    │ '@@' │ serial │ version │ time │ source │ dest.  │ length │ command │ app data  │ sum │ '##' │
    │ 2    │ 2      │ 1 + 1   │ 6    │ 6      │ 6      │ 2      │ 1       │ 0..1024   │ 1   │ 2    │
    └──────┴────────┴─────────┴──────┴────────┴────────┴────────┴─────────┴───────────┴─────┴──────┘
            └─────────────────── control unit: bytes 3..27 ───────────────┘
    sum  = (control unit + app data) mod 256
    time = second, minute, hour, day, month, year - 2000 (the device's local time, clause 8.2.2)

Application data unit (clause 7): type (1), object count (1), then the objects. Types 1, 2, 3
and 21 decode into typed objects; 4..8 and 24..28 are split into `OtherObject`s; any other type
is kept whole in `DataUnit.opaque`.

`decode_stream` takes a receive buffer and returns (frame or None, bytes consumed); None means
"need more bytes". Bytes that cannot be a frame raise `FrameRejected`, whose `consumed` says how
many bytes to drop so the stream resynchronises on the next '@@', and whose `header` is set when
the control unit was readable (so the receiver can deny that serial number).

(About 490 lines, over the house's ~400: the frame, the data-unit tables with their decoders
and encoders, and the stream resync are one standard's codec and are read together.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum

from edge_agent.errors import FrameError

START = b"@@"
END = b"##"
HEADER_BYTES = 27  # start marker + control unit
OVERHEAD = 30  # start + control unit + checksum + end
MAX_APP_DATA = 1024
DESCRIPTION_BYTES = 31


class Command(IntEnum):
    """Control-unit command byte (clause 6.6, table 2)."""

    CONTROL = 1
    SEND_DATA = 2
    CONFIRM = 3
    REQUEST = 4
    RESPONSE = 5
    DENY = 6


_COMMANDS = frozenset(int(c) for c in Command)


class UnitType(IntEnum):
    """Application data unit type flags (clause 8.1.1) that this codec decodes."""

    SYSTEM_STATE = 1
    COMPONENT_STATE = 2
    ANALOG_VALUE = 3
    UITD_STATE = 21


class FrameRejected(FrameError):
    """Bytes that are not a usable frame: `reason` is a metric label, `consumed` the bytes to
    drop, `header` the control unit when it could be read."""

    def __init__(self, reason: str, detail: str, *, offset: int = 0, consumed: int = 0,
                 header: Header | None = None) -> None:
        super().__init__(f"{reason} at offset {offset}: {detail}")
        self.reason = reason
        self.offset = offset
        self.consumed = consumed
        self.header = header


@dataclass(frozen=True)
class Stamp:
    """A time label as sent: local time, whole seconds (clause 8.2.2)."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int

    @classmethod
    def decode(cls, data: bytes) -> Stamp:
        second, minute, hour, day, month, year = data
        return cls(2000 + year, month, day, hour, minute, second)

    def encode(self) -> bytes:
        if not 2000 <= self.year <= 2099:
            raise FrameError(f"year {self.year} does not fit the time label (2000..2099)")
        return bytes((self.second, self.minute, self.hour, self.day, self.month,
                      self.year - 2000))

    def is_valid(self) -> bool:
        try:
            self._local(0.0)
        except ValueError:
            return False
        return self.year <= 2099

    def _local(self, utc_offset_h: float) -> datetime:
        zone = timezone(timedelta(hours=utc_offset_h))
        return datetime(self.year, self.month, self.day, self.hour, self.minute, self.second,
                        tzinfo=zone)

    def to_epoch_ms(self, utc_offset_h: float = 8.0) -> int:
        """Epoch milliseconds of this local time in a zone `utc_offset_h` hours east of UTC."""
        try:
            return round(self._local(utc_offset_h).timestamp()) * 1000
        except ValueError as err:
            raise FrameError(f"invalid time label {self}: {err}") from err

    @classmethod
    def from_epoch_ms(cls, epoch_ms: int, utc_offset_h: float = 8.0) -> Stamp:
        local = datetime.fromtimestamp(epoch_ms // 1000, UTC) + timedelta(hours=utc_offset_h)
        return cls(local.year, local.month, local.day, local.hour, local.minute, local.second)


@dataclass(frozen=True)
class Header:
    """The control unit. Addresses are the 48-bit numbers (sent low byte first)."""

    serial: int
    sent_at: Stamp
    source: int
    destination: int
    command: int
    version: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class SystemState:
    """Clause 8.2.1.1: state of a building fire-protection system (e.g. an alarm controller)."""

    system_type: int
    system_address: int
    state: int
    at: Stamp


@dataclass(frozen=True)
class ComponentState:
    """Clause 8.2.1.2: running state of one component (detector, module, pump...)."""

    system_type: int
    system_address: int
    component_type: int
    component_address: int
    state: int
    description: str
    at: Stamp


@dataclass(frozen=True)
class AnalogValue:
    """Clause 8.2.1.3: a component's analog value; `value` is the raw signed 16-bit number whose
    unit and resolution `analog_type` defines (see ANALOG_FIELDS)."""

    system_type: int
    system_address: int
    component_type: int
    component_address: int
    analog_type: int
    value: int
    at: Stamp


@dataclass(frozen=True)
class UitdState:
    """Clause 8.2.1.8: the user information transmission device's own state byte."""

    state: int
    at: Stamp


@dataclass(frozen=True)
class OtherObject:
    """An information object of a type this codec splits but does not interpret."""

    data: bytes


InfoObject = SystemState | ComponentState | AnalogValue | UitdState | OtherObject


@dataclass(frozen=True)
class DataUnit:
    type_id: int
    count: int
    objects: tuple[InfoObject, ...] = ()
    opaque: bytes = b""


@dataclass(frozen=True)
class Frame:
    header: Header
    unit: DataUnit | None  # None: empty application data (confirm, deny, heartbeat)


# Fields a profile point can name (`field:`), from the state words and analog types.
COMPONENT_BITS = ("normal", "fire_alarm", "fault", "shielded", "supervisory", "started",
                  "feedback", "delayed", "power_fault")
SYSTEM_BITS = ("normal", "fire_alarm", "fault", "shielded", "supervisory", "started", "feedback",
               "delayed", "main_power_fault", "backup_power_fault", "bus_fault", "manual",
               "config_changed", "reset")
ANALOG_FIELDS: dict[int, str] = {
    1: "analog_event_count", 2: "analog_height", 3: "analog_temperature",
    4: "analog_pressure_mpa", 5: "analog_pressure_kpa", 6: "analog_gas_concentration",
    7: "analog_time", 8: "analog_voltage", 9: "analog_current", 10: "analog_flow",
    11: "analog_air_volume", 12: "analog_wind_speed"}
FIELDS = frozenset({*COMPONENT_BITS, *SYSTEM_BITS, "state", "analog_value",
                    *ANALOG_FIELDS.values()})


def decoded_fields(obj: InfoObject) -> dict[str, bool | int]:
    """The named raw values one information object carries (empty for the others)."""
    if isinstance(obj, ComponentState):
        return {"state": obj.state, **_bits(obj.state, COMPONENT_BITS)}
    if isinstance(obj, SystemState):
        return {"state": obj.state, **_bits(obj.state, SYSTEM_BITS)}
    if isinstance(obj, AnalogValue):
        typed = ANALOG_FIELDS.get(obj.analog_type)
        return {"analog_value": obj.value, **({typed: obj.value} if typed else {})}
    return {}


def _bits(word: int, names: tuple[str, ...]) -> dict[str, bool | int]:
    return {name: bool(word >> bit & 1) for bit, name in enumerate(names)}


def parse_address(text: str) -> int:
    """A 48-bit address from 12 hex digits, most significant first ("000000000379")."""
    if len(text) != 12 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(f"address {text!r} is not 12 hex digits")
    return int(text, 16)


def format_address(value: int) -> str:
    return f"{value:012X}"


# ---- application data units ------------------------------------------------------------

class _UnitError(Exception):
    def __init__(self, reason: str, detail: str, offset: int) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.offset = reason, detail, offset


_SIZES: dict[int, int] = {1: 10, 2: 46, 3: 16, 4: 10, 5: 4, 7: 38, 8: 8, 21: 7, 24: 8, 25: 2,
                          28: 6}
_LENGTH_BYTE: dict[int, int] = {6: 2, 26: 0}  # variable-length objects: where the length is


def _u(data: bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start:start + size], "little")


def _stamp(data: bytes, offset: int) -> Stamp:
    stamp = Stamp.decode(data)
    if not stamp.is_valid():
        raise _UnitError("bad_time", f"invalid time label {data.hex(' ')}", offset)
    return stamp


def _text(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("gb18030", errors="replace").rstrip()


def _system_state(c: bytes, offset: int) -> SystemState:
    return SystemState(c[0], c[1], _u(c, 2, 2), _stamp(c[4:10], offset + 4))


def _component_state(c: bytes, offset: int) -> ComponentState:
    return ComponentState(c[0], c[1], c[2], _u(c, 3, 4), _u(c, 7, 2), _text(c[9:40]),
                          _stamp(c[40:46], offset + 40))


def _analog_value(c: bytes, offset: int) -> AnalogValue:
    value = int.from_bytes(c[8:10], "little", signed=True)
    return AnalogValue(c[0], c[1], c[2], _u(c, 3, 4), c[7], value, _stamp(c[10:16], offset + 10))


def _uitd_state(c: bytes, offset: int) -> UitdState:
    return UitdState(c[0], _stamp(c[1:7], offset + 1))


_PARSERS = {1: _system_state, 2: _component_state, 3: _analog_value, 21: _uitd_state}


def _split_fixed(body: bytes, count: int, size: int) -> list[tuple[bytes, int]]:
    if len(body) != count * size:
        raise _UnitError("bad_data_unit", f"{count} objects of {size} bytes need "
                         f"{count * size} bytes, got {len(body)}", 2)
    return [(body[i * size:(i + 1) * size], 2 + i * size) for i in range(count)]


def _split_prefixed(body: bytes, count: int, length_at: int) -> list[tuple[bytes, int]]:
    chunks, pos = [], 0
    for _ in range(count):
        if pos + length_at >= len(body):
            raise _UnitError("bad_data_unit", "object length byte missing", 2 + pos)
        end = pos + length_at + 1 + body[pos + length_at]
        if end > len(body):
            raise _UnitError("bad_data_unit", "object runs past the data unit", 2 + pos)
        chunks.append((body[pos:end], 2 + pos))
        pos = end
    if pos != len(body):
        raise _UnitError("bad_data_unit", f"{len(body) - pos} bytes after the objects", 2 + pos)
    return chunks


def decode_unit(data: bytes) -> DataUnit:
    """Decode one application data unit; raise FrameError for an inconsistent one."""
    try:
        return _decode_unit(data)
    except _UnitError as err:
        raise FrameRejected(err.reason, err.detail, offset=err.offset) from None


def _decode_unit(data: bytes) -> DataUnit:
    if len(data) < 2:
        raise _UnitError("bad_data_unit", "shorter than type + object count", 0)
    type_id, count, body = data[0], data[1], bytes(data[2:])
    if type_id in _SIZES:
        chunks = _split_fixed(body, count, _SIZES[type_id])
    elif type_id in _LENGTH_BYTE:
        chunks = _split_prefixed(body, count, _LENGTH_BYTE[type_id])
    else:
        return DataUnit(type_id, count, (), body)
    parser = _PARSERS.get(type_id)
    objects = tuple(parser(c, off) if parser else OtherObject(c) for c, off in chunks)
    return DataUnit(type_id, count, objects)


def _encode_text(text: str) -> bytes:
    data = text.encode("gb18030")
    if len(data) > DESCRIPTION_BYTES:
        raise FrameError(f"description {text!r} is longer than {DESCRIPTION_BYTES} bytes")
    return data.ljust(DESCRIPTION_BYTES, b"\0")


def _le(value: int, size: int, what: str, signed: bool = False) -> bytes:
    try:
        return value.to_bytes(size, "little", signed=signed)
    except OverflowError as err:
        raise FrameError(f"{what} {value} does not fit {size} bytes") from err


def encode_object(obj: InfoObject) -> bytes:
    """The bytes of one information object (the inverse of the decoders)."""
    if isinstance(obj, OtherObject):
        return obj.data
    if isinstance(obj, UitdState):
        return _le(obj.state, 1, "state") + obj.at.encode()
    head = _le(obj.system_type, 1, "system type") + _le(obj.system_address, 1, "system address")
    if isinstance(obj, SystemState):
        return head + _le(obj.state, 2, "state") + obj.at.encode()
    head += _le(obj.component_type, 1, "component type") + _le(
        obj.component_address, 4, "component address")
    if isinstance(obj, ComponentState):
        return head + _le(obj.state, 2, "state") + _encode_text(obj.description) + obj.at.encode()
    return (head + _le(obj.analog_type, 1, "analog type")
            + _le(obj.value, 2, "analog value", signed=True) + obj.at.encode())


def encode_unit(unit: DataUnit) -> bytes:
    body = b"".join(encode_object(o) for o in unit.objects) + unit.opaque
    return _le(unit.type_id, 1, "type") + _le(unit.count, 1, "object count") + body


def unit_of(type_id: int, *objects: InfoObject) -> DataUnit:
    return DataUnit(type_id, len(objects), tuple(objects))


# ---- frames ------------------------------------------------------------------------------

def encode_frame(header: Header, app_data: bytes = b"") -> bytes:
    """A complete frame, with its length and checksum."""
    if len(app_data) > MAX_APP_DATA:
        raise FrameError(f"application data of {len(app_data)} bytes exceeds {MAX_APP_DATA}")
    control = (_le(header.serial, 2, "serial") + bytes(header.version) + header.sent_at.encode()
               + _le(header.source, 6, "source address")
               + _le(header.destination, 6, "destination address")
               + _le(len(app_data), 2, "length") + _le(header.command, 1, "command"))
    body = control + app_data
    return START + body + bytes((sum(body) & 0xFF,)) + END


def reply_header(header: Header, command: Command, sent_at: Stamp) -> Header:
    """The header of a confirm/deny for `header`: same serial and version, addresses swapped."""
    return Header(header.serial, sent_at, header.destination, header.source, command,
                  header.version)


def _header(frame: bytes) -> Header:
    return Header(serial=_u(frame, 2, 2), sent_at=Stamp.decode(frame[6:12]),
                  source=_u(frame, 12, 6), destination=_u(frame, 18, 6), command=frame[26],
                  version=(frame[4], frame[5]))


def _resync(buf: bytes | bytearray) -> int:
    """Bytes to drop to reach the next start marker after position 0 (at least 1)."""
    found = buf.find(START, 1)
    if found > 0:
        return found
    return max(1, len(buf) - (1 if buf.endswith(b"@") else 0))


def _is_frame_at(buf: bytes | bytearray, at: int) -> bool:
    if len(buf) - at < OVERHEAD:
        return False
    length = int.from_bytes(buf[at + 24:at + 26], "little")
    end = at + OVERHEAD + length
    if length > MAX_APP_DATA or end > len(buf) or buf[end - 2:end] != END:
        return False
    return sum(buf[at + 2:end - 3]) & 0xFF == buf[end - 3]


def _later_frame(buf: bytes | bytearray, before: int) -> int:
    """Start of the first complete, well-formed frame after position 0 and before `before`."""
    at = buf.find(START, 1, before + 1)
    while 0 < at < before:
        if _is_frame_at(buf, at):
            return at
        at = buf.find(START, at + 1, before + 1)
    return 0


def _garbage(buf: bytes | bytearray, start: int) -> tuple[None, int]:
    if start < 0:
        start = len(buf) - (1 if buf.endswith(b"@") else 0)
        if start == 0:
            return None, 0
    raise FrameRejected("garbage", f"{start} bytes before a start marker", consumed=start)


def decode_stream(buf: bytes | bytearray) -> tuple[Frame | None, int]:
    """Decode the frame at the start of `buf`: (frame, its length) or (None, 0) for "need
    more bytes"; raise FrameRejected (with `consumed` > 0) for bytes that are no good frame."""
    start = buf.find(START)
    if start != 0:
        return _garbage(buf, start)
    if len(buf) < HEADER_BYTES:
        return None, 0
    length = int.from_bytes(buf[24:26], "little")
    if length > MAX_APP_DATA:
        raise FrameRejected("oversized", f"application data length {length} > {MAX_APP_DATA}",
                            offset=24, consumed=_resync(buf))
    total = OVERHEAD + length
    if len(buf) < total:
        later = _later_frame(buf, len(buf))
        if later:
            raise FrameRejected("truncated", f"a new frame starts at {later}", consumed=later)
        return None, 0
    if buf[total - 2:total] != END:
        skip = _resync(buf)
        reason = "truncated" if skip < total else "bad_end_marker"
        raise FrameRejected(reason, f"no end marker at {total - 2}", offset=total - 2,
                            consumed=skip)
    return _decode_complete(buf, total), total


def _decode_complete(buf: bytes | bytearray, total: int) -> Frame:
    frame = bytes(buf[:total])
    header = _header(frame)
    checksum = sum(frame[2:total - 3]) & 0xFF
    if checksum != frame[total - 3]:
        consumed = _later_frame(buf, total) or total
        raise FrameRejected("bad_checksum", f"sum {checksum:#04x} != {frame[total - 3]:#04x}",
                            offset=total - 3, consumed=consumed, header=header)
    if header.command not in _COMMANDS:
        raise FrameRejected("bad_command", f"command byte {header.command}", offset=26,
                            consumed=total, header=header)
    if total == OVERHEAD:
        return Frame(header, None)
    try:
        return Frame(header, _decode_unit(frame[HEADER_BYTES:total - 3]))
    except _UnitError as err:
        raise FrameRejected(err.reason, err.detail, offset=HEADER_BYTES + err.offset,
                            consumed=total, header=header) from None


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame (golden frames, tests); raise FrameRejected otherwise."""
    frame, used = decode_stream(data)
    if frame is None:
        raise FrameRejected("truncated", f"{len(data)} bytes are not a whole frame")
    if used != len(data):
        raise FrameRejected("garbage", f"{len(data) - used} bytes after the frame",
                            offset=used, consumed=len(data) - used)
    return frame
