"""CJ/T 188 (户用计量仪表数据传输技术条件) frame codec. Pure: no I/O, no time, no logging.

One frame, byte widths below; A0..A6 and every multi-byte field are sent low byte first:

    ┌──────────┬────┬───┬─────────┬───┬───┬──────────────────────────────┬────┬────┐
    │ FE .. FE │ 68 │ T │ A0 .. A6│ C │ L │ DATA: DI (2) SER (1) items.. │ CS │ 16 │
    │ 0..n     │ 1  │ 1 │ 7       │ 1 │ 1 │ L (≤ 0x64)                   │ 1  │ 1  │
    └──────────┴────┴───┴─────────┴───┴───┴──────────────────────────────┴────┴────┘

- FE: optional wake-up preamble; 68: start; T: meter type (10H cold water .. 30H gas, AAH any).
- A0..A6: address, BCD, low byte first, so the printed address is the bytes reversed
  (A0..A6 = 89 67 45 23 01 33 78 is meter "78330123456789"). AA × 7 is the broadcast address.
- C: D7 direction (1 = from the meter), D6 error answer, D5..D0 function (01 read data,
  03 read address, 04 write data, 15 write address, 16 write sync data).
- CS: the sum of every byte from 68 through the end of DATA, modulo 256. 16: end.
- DI: data identifier, e.g. 901F metering data, 810A address. Meters differ in the byte order
  they send it in (90 1F or 1F 90); both are read.

901F answer of a water/gas meter (T 10H..19H, 30H..39H), after DI and SER:

    current cumulative flow 4 BCD (XXXXXX.XX) + unit | settlement-day cumulative flow 4 + unit |
    clock 7 BCD (ss mm hh DD MM YY YY, low first) | ST 2

and of a heat meter (T 20H..29H): settlement-day heat 4+unit, current heat 4+unit, heat power
4+unit, flow 4+unit, cumulative flow 4+unit, supply and return temperature 3 each, working
hours 3, clock 7, ST 2. ST0 bits D1 D0: valve 00 open, 01 closed, 11 abnormal; D2: battery low;
the rest and ST1 are the manufacturer's. A value whose bytes are all FF (or a clock of all 00)
is "not provided" and decodes to None.

Errors carry a short `reason` (a metric label), the byte `offset` and, from the stream
decoder, how many bytes to drop (`consumed`):

    FrameError (edge_agent.errors)
    └── Cjt188Error          reason
        ├── Garbage          garbage          bytes before a start byte, or a false start
        ├── Oversized        oversized        L over 64H
        ├── BadEnd           bad_end          no 16H where L says the frame ends
        ├── BadChecksum      bad_checksum
        ├── Truncated        truncated        the bytes stop inside a frame
        ├── BadBcd           bad_bcd          a digit over 9 in a BCD field
        ├── UnknownUnit      unknown_unit     a unit code the item does not take
        └── UnexpectedData   unexpected_data  not the answer/item that was asked for
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from edge_agent.errors import FrameError

PREAMBLE = 0xFE
START = 0x68
END = 0x16
HEADER_BYTES = 11  # 68 T A0..A6 C L
OVERHEAD_BYTES = 13  # header + CS + 16
MAX_DATA_BYTES = 0x64
BROADCAST = bytes([0xAA] * 7)
ANY_METER_TYPE = 0xAA

DI_METERING = 0x901F
DI_ADDRESS = 0x810A
KNOWN_DIS = frozenset({DI_METERING, DI_ADDRESS, *range(0xD120, 0xD12C), *range(0x8102, 0x810B),
                       *range(0xA010, 0xA01A)})

DIRECTION_BIT = 0x80
ERROR_BIT = 0x40
FUNCTION_MASK = 0x3F


class Function(IntEnum):
    READ_DATA = 0x01
    READ_ADDRESS = 0x03
    WRITE_DATA = 0x04
    READ_KEY_VERSION = 0x09
    WRITE_ADDRESS = 0x15
    WRITE_SYNC = 0x16


class Cjt188Error(FrameError):
    """A frame or data item that cannot be decoded."""

    reason: ClassVar[str] = "malformed"

    def __init__(self, message: str, offset: int = 0, consumed: int = 0) -> None:
        super().__init__(f"{message} (byte {offset}, {self.reason})")
        self.offset = offset
        self.consumed = consumed


class Garbage(Cjt188Error):
    reason = "garbage"


class Oversized(Cjt188Error):
    reason = "oversized"


class BadEnd(Cjt188Error):
    reason = "bad_end"


class BadChecksum(Cjt188Error):
    reason = "bad_checksum"


class Truncated(Cjt188Error):
    reason = "truncated"


class BadBcd(Cjt188Error):
    reason = "bad_bcd"


class UnknownUnit(Cjt188Error):
    reason = "unknown_unit"


class UnexpectedData(Cjt188Error):
    reason = "unexpected_data"


@dataclass(frozen=True)
class Frame:
    """One frame; `address` is A0..A6 as sent (low byte first)."""

    meter_type: int
    address: bytes
    control: int
    data: bytes = b""

    @property
    def function(self) -> int:
        return self.control & FUNCTION_MASK

    @property
    def from_meter(self) -> bool:
        return bool(self.control & DIRECTION_BIT)

    @property
    def is_error(self) -> bool:
        return bool(self.control & ERROR_BIT)


def checksum(body: bytes | bytearray) -> int:
    """Sum of the bytes from 68 through the end of DATA, modulo 256."""
    return sum(body) & 0xFF


def encode_frame(frame: Frame, preamble_bytes: int = 0) -> bytes:
    if len(frame.address) != 7:
        raise Cjt188Error(f"address must be 7 bytes, got {len(frame.address)}", 2)
    if len(frame.data) > 0xFF:
        raise Oversized(f"{len(frame.data)} data bytes do not fit L", 10)
    body = bytes([START, frame.meter_type]) + frame.address + bytes(
        [frame.control, len(frame.data)]) + frame.data
    return bytes([PREAMBLE] * preamble_bytes) + body + bytes([checksum(body), END])


def _frame_at(buf: bytes | bytearray, i: int) -> tuple[Frame | None, int]:
    """Parse the frame whose 68 is at `i`: (frame, end) when complete, (None, 0) when short."""
    n = len(buf)
    if n - i < HEADER_BYTES:
        return None, 0
    length = buf[i + 10]
    if length > MAX_DATA_BYTES:
        raise Oversized(f"L = {length} exceeds {MAX_DATA_BYTES}", i + 10, i + 1)
    end = i + OVERHEAD_BYTES + length
    if n < end:
        return None, 0
    if buf[end - 1] != END:
        raise BadEnd(f"byte {buf[end - 1]:02X} where 16 ends the frame", end - 1, i + 1)
    expected = checksum(buf[i:end - 2])
    if buf[end - 2] != expected:
        raise BadChecksum(f"checksum {buf[end - 2]:02X}, computed {expected:02X}", end - 2, i + 1)
    frame = Frame(buf[i + 1], bytes(buf[i + 2:i + 9]), buf[i + 9], bytes(buf[i + 11:end - 2]))
    return frame, end


def _next_complete(buf: bytes | bytearray, start: int) -> int | None:
    """Offset of the next 68 after `start` that begins a complete, valid frame."""
    k = buf.find(START, start)
    while k >= 0:
        try:
            frame, _ = _frame_at(buf, k)
        except Cjt188Error:
            frame = None
        if frame is not None:
            return k
        k = buf.find(START, k + 1)
    return None


def decode_stream(buf: bytes | bytearray) -> tuple[Frame | None, int]:
    """Decode the first frame of `buf`: (frame, bytes consumed) or (None, bytes to drop) when
    more bytes are needed. Raise a Cjt188Error whose `consumed` bytes the caller drops before
    trying again (the decoder resynchronises on the next 68)."""
    n, i = len(buf), 0
    while i < n and buf[i] == PREAMBLE:
        i += 1
    if i == n:
        return None, i
    if buf[i] != START:
        nxt = buf.find(START, i)
        raise Garbage(f"{(nxt if nxt >= 0 else n) - i} bytes before a start byte", i,
                      nxt if nxt >= 0 else n)
    frame, end = _frame_at(buf, i)
    if frame is not None:
        return frame, end
    later = _next_complete(buf, i + 1)
    if later is not None:  # a false start whose length runs past a complete frame
        raise Garbage(f"{later - i} bytes before the next complete frame", i, later)
    return None, i


def decode_frame(raw: bytes) -> Frame:
    """Decode exactly one frame (an optional preamble allowed)."""
    frame, consumed = decode_stream(raw)
    if frame is None:
        raise Truncated(f"{len(raw)} bytes are not a whole frame", len(raw), len(raw))
    if consumed != len(raw):
        raise Garbage(f"{len(raw) - consumed} bytes after the frame", consumed, len(raw))
    return frame


# --- addresses, identifiers, BCD ---------------------------------------------------------

def parse_address(printed: str) -> bytes:
    """The 14 hex digits printed on the meter (A6 first) -> A0..A6 as sent."""
    if len(printed) != 14:
        raise ValueError(f"a CJ/T 188 address has 14 digits, got {printed!r}")
    return bytes.fromhex(printed)[::-1]


def format_address(address: bytes) -> str:
    return address[::-1].hex().upper()


def encode_di(di: int, swap: bool = False) -> bytes:
    raw = di.to_bytes(2, "big")
    return raw[::-1] if swap else raw


def decode_di(raw: bytes) -> int:
    """The identifier in either byte order: a known DI wins, else the 90 1F reading."""
    big = int.from_bytes(raw, "big")
    little = int.from_bytes(raw, "little")
    return little if big not in KNOWN_DIS and little in KNOWN_DIS else big


def decode_bcd(raw: bytes, offset: int = 0) -> int:
    """BCD digits, low byte first."""
    value = 0
    for k, byte in enumerate(reversed(raw)):
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise BadBcd(f"{byte:02X} is not two BCD digits", offset + len(raw) - 1 - k)
        value = value * 100 + high * 10 + low
    return value


def encode_bcd(value: int, width: int) -> bytes:
    if not 0 <= value < 100 ** width:
        raise Cjt188Error(f"{value} does not fit {width} BCD bytes")
    out = bytearray()
    for _ in range(width):
        value, pair = divmod(value, 100)
        out.append((pair // 10) << 4 | pair % 10)
    return bytes(out)


# --- requests and answers ----------------------------------------------------------------

def read_data_request(address: bytes, meter_type: int, ser: int = 0, di: int = DI_METERING,
                      swap_di: bool = False) -> Frame:
    """C = 01: ask the meter at `address` (BROADCAST: the only meter on the bus) for `di`."""
    return Frame(meter_type, address, Function.READ_DATA, encode_di(di, swap_di) + bytes([ser]))


def read_address_request(ser: int = 0, meter_type: int = ANY_METER_TYPE,
                         swap_di: bool = False) -> Frame:
    """C = 03, DI 810A to the broadcast address: the (only) meter answers with its address."""
    return Frame(meter_type, BROADCAST, Function.READ_ADDRESS,
                 encode_di(DI_ADDRESS, swap_di) + bytes([ser]))


def answer(request: Frame, meter_type: int, address: bytes, payload: bytes = b"",
           error: bool = False) -> Frame:
    """The meter's answer to `request`: its DI (in the request's byte order) and SER, then
    `payload` (an error answer carries SER and ST instead)."""
    control = DIRECTION_BIT | (ERROR_BIT if error else 0) | request.function
    head = request.data[2:3] if error else request.data[:3]
    return Frame(meter_type, address, control, head + payload)


def sequence_number(frame: Frame) -> int | None:
    """SER: after DI in requests and answers, first in error answers (SER ST)."""
    at = 0 if frame.is_error else 2
    return frame.data[at] if len(frame.data) > at else None


def classify_answer(request: Frame, frame: Frame, check_ser: bool = True) -> str | None:
    """None when `frame` answers `request`; else why not: "echo" (a request, e.g. our own
    echoed by a half-duplex adapter), "unexpected_control", "unknown_address" or "stale"
    (another SER: a late answer to an earlier request)."""
    if not frame.from_meter:
        return "echo"
    if frame.function != request.function:
        return "unexpected_control"
    if request.address != BROADCAST and frame.address != request.address:
        return "unknown_address"
    if check_ser and sequence_number(frame) != sequence_number(request):
        return "stale"
    return None
