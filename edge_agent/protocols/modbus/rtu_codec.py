"""Modbus RTU framing: ADU bytes <-> typed requests and responses. Pure: no I/O, time or logging.

Standard: MODBUS over Serial Line Specification and Implementation Guide V1.02 (§2.5.1 RTU
framing, §6.2.2 CRC) and MODBUS Application Protocol Specification V1.1b3 (§6 function codes,
§7 exception responses).

    ADU  ┌──────┬──────────┬─────────────────────────┬──────────┬──────────┐
         │ unit │ function │ data                    │ CRC lo   │ CRC hi   │
         │ 1    │ 1        │ 0..252                  │ 1        │ 1        │
         └──────┴──────────┴─────────────────────────┴──────────┴──────────┘
    read request    FC1-4     address(2) count(2)                        8 bytes
    read response   FC1/2     byte count(1) bits, LSB first (ceil(n/8))  5 + ceil(n/8)
                    FC3/4     byte count(1) registers, big-endian (2n)   5 + 2n
    write single    FC5/6     address(2) value(2); the answer echoes it  8 bytes
    write multiple  FC15/16   address(2) count(2) byte count(1) data     9 + byte count
                              answer: address(2) count(2)                8 bytes
    exception       FC|0x80   code(1)                                    5 bytes

CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) over unit..data, sent low byte first:
`01 03 00 00 00 0A` -> CRC 0xCDC5 -> on the wire `01 03 00 00 00 0A C5 CD`.

RTU frames have no start marker: a frame ends with 3.5 character times of silence, which a
user-space program cannot see reliably. So the stream entry points work from lengths: a request's
length follows from its function code; a response's from the request it answers
(`response_length`). `next_response(buffer, request)` / `next_request(buffer)` return
(frame, bytes consumed):

    (frame, n)    a complete frame with a good CRC in buffer[:n]
    (None, 0)     a frame may start at buffer[0] but is incomplete: read more
    (None, n > 0) buffer[:n] cannot start a frame (garbage): drop it and call again

and raise `RtuFrameError` (reason "bad_crc", "bad_length", ...) for a complete candidate that is
not a valid frame; its `consumed` says how much to drop to resynchronise (1 for a bad CRC, since
the real frame may start inside the rejected one).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.errors import RejectedFrame

READ_COILS, READ_DISCRETE, READ_HOLDING, READ_INPUT = 1, 2, 3, 4
WRITE_COIL, WRITE_REGISTER, WRITE_COILS, WRITE_REGISTERS = 5, 6, 15, 16
BIT_READS = frozenset({READ_COILS, READ_DISCRETE})
REGISTER_READS = frozenset({READ_HOLDING, READ_INPUT})
SINGLE_WRITES = frozenset({WRITE_COIL, WRITE_REGISTER})
MULTIPLE_WRITES = frozenset({WRITE_COILS, WRITE_REGISTERS})
FUNCTIONS = BIT_READS | REGISTER_READS | SINGLE_WRITES | MULTIPLE_WRITES
EXCEPTION_FLAG = 0x80
MAX_UNIT = 247
MAX_ADU_BYTES = 256
COUNT_LIMITS: dict[int, int] = {READ_COILS: 2000, READ_DISCRETE: 2000, READ_HOLDING: 125,
                                READ_INPUT: 125, WRITE_COILS: 1968, WRITE_REGISTERS: 123}
COIL_ON, COIL_OFF = 0xFF00, 0x0000


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


class RtuFrameError(RejectedFrame):
    """Bytes that are not a valid RTU frame; `reason` is a metric label, `offset` where the
    frame started, `consumed` how many bytes to drop before trying again."""

    def __init__(self, reason: str, offset: int, detail: str, consumed: int = 0) -> None:
        super().__init__(reason, offset, detail)
        self.consumed = consumed


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/MODBUS of `data` (the value; it goes on the wire low byte first)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(body: bytes) -> bytes:
    """`body` followed by its CRC, low byte first."""
    return body + crc16(body).to_bytes(2, "little")


@dataclass(frozen=True)
class Request:
    """One request. FC1-4: `count` to read; FC5/6: `values` = (value,) (a coil is 0xFF00 or
    0x0000 on the wire, here 1 or 0); FC15/16: `values` = the bits (0/1) or registers to write."""

    unit: int
    function: int
    address: int
    count: int = 1
    values: tuple[int, ...] = ()


@dataclass(frozen=True)
class ReadResponse:
    """Bits (0/1, exactly the count asked for) or registers read."""

    unit: int
    function: int
    values: tuple[int, ...]


@dataclass(frozen=True)
class WriteResponse:
    """The echo of a write: FC5/6 `value` is the value written, FC15/16 `value` the count."""

    unit: int
    function: int
    address: int
    value: int


@dataclass(frozen=True)
class ExceptionResponse:
    """The device refused: `function` is the request's function, `code` the exception code."""

    unit: int
    function: int
    code: int


Response = ReadResponse | WriteResponse | ExceptionResponse


def _invalid(detail: str) -> RtuFrameError:
    return RtuFrameError("invalid_request", 0, detail)


def _check_request(request: Request) -> None:
    fc, count = request.function, request.count
    if fc not in FUNCTIONS:
        raise _invalid(f"function {fc} is not supported")
    if not 0 <= request.unit <= MAX_UNIT:
        raise _invalid(f"unit {request.unit} is outside 0..{MAX_UNIT}")
    if fc in SINGLE_WRITES:
        count = 1
        if len(request.values) != 1 or not 0 <= request.values[0] <= 0xFFFF:
            raise _invalid(f"function {fc} writes one value 0..65535, got {request.values}")
    elif not 1 <= count <= COUNT_LIMITS[fc]:
        raise _invalid(f"function {fc} takes 1..{COUNT_LIMITS[fc]} items, not {count}")
    if request.address < 0 or request.address + count > 0x10000:
        raise _invalid(f"address {request.address}+{count} is outside 0..65535")
    if fc in MULTIPLE_WRITES:
        top = 1 if fc == WRITE_COILS else 0xFFFF
        if len(request.values) != count or any(not 0 <= v <= top for v in request.values):
            raise _invalid(f"function {fc} needs {count} values 0..{top}")


def _pack_bits(bits: tuple[int, ...]) -> bytes:
    packed = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            packed[i // 8] |= 1 << (i % 8)
    return bytes(packed)


def _unpack_bits(data: bytes, count: int) -> tuple[int, ...]:
    return tuple((data[i // 8] >> (i % 8)) & 1 for i in range(count))


def _registers(values: tuple[int, ...]) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)


def encode_request(request: Request) -> bytes:
    """The ADU of `request`; RtuFrameError("invalid_request") when it breaks a limit."""
    _check_request(request)
    fc = request.function
    head = bytes((request.unit, fc)) + request.address.to_bytes(2, "big")
    if fc in SINGLE_WRITES:
        value = request.values[0]
        if fc == WRITE_COIL:
            value = COIL_ON if value else COIL_OFF
        return with_crc(head + value.to_bytes(2, "big"))
    body = head + request.count.to_bytes(2, "big")
    if fc in MULTIPLE_WRITES:
        data = _pack_bits(request.values) if fc == WRITE_COILS else _registers(request.values)
        body += bytes((len(data),)) + data
    return with_crc(body)


def response_length(request: Request) -> int:
    """Bytes of the normal response to `request` (an exception response is 5)."""
    if request.function in BIT_READS:
        return 5 + (request.count + 7) // 8
    if request.function in REGISTER_READS:
        return 5 + 2 * request.count
    return 8


def encode_response(response: Response) -> bytes:
    """The ADU of a response (the device side, e.g. a simulator)."""
    head = bytes((response.unit, response.function))
    if isinstance(response, ExceptionResponse):
        return with_crc(bytes((response.unit, response.function | EXCEPTION_FLAG,
                               response.code)))
    if isinstance(response, WriteResponse):
        value = response.value
        if response.function == WRITE_COIL:
            value = COIL_ON if value else COIL_OFF
        return with_crc(head + response.address.to_bytes(2, "big") + value.to_bytes(2, "big"))
    if response.function in BIT_READS:
        data = _pack_bits(response.values)
    else:
        data = _registers(response.values)
    return with_crc(head + bytes((len(data),)) + data)


def _check_crc(adu: bytes | bytearray, offset: int = 0) -> None:
    expected = crc16(adu[:-2])
    got = int.from_bytes(adu[-2:], "little")
    if got != expected:
        raise RtuFrameError("bad_crc", offset, f"CRC {got:04X}, computed {expected:04X}",
                            consumed=offset + 1)


def _request_length(buffer: bytes | bytearray, i: int) -> int | None:
    """Length of a request starting at buffer[i]; 0 when buffer[i] cannot start one, None when
    more bytes are needed to tell."""
    if buffer[i] > MAX_UNIT:
        return 0
    if i + 1 >= len(buffer):
        return None
    fc = buffer[i + 1]
    if fc not in FUNCTIONS:
        return 0
    if fc not in MULTIPLE_WRITES:
        return 8
    if i + 6 >= len(buffer):
        return None
    byte_count = buffer[i + 6]
    return 9 + byte_count if byte_count <= MAX_ADU_BYTES - 9 else 0


def next_request(buffer: bytes | bytearray, *, at_end: bool = False
                 ) -> tuple[Request | None, int]:
    """The first request in `buffer` (device side); see the module docstring. `at_end`: the
    line has been silent for t3.5, so an incomplete candidate at buffer[0] is garbage."""
    for i in range(len(buffer)):
        length = _request_length(buffer, i)
        if length == 0:
            continue
        if i > 0:
            return None, i
        if length is None or len(buffer) < length:
            return None, 1 if at_end else 0
        return decode_request(bytes(buffer[:length])), length
    return None, len(buffer)


def decode_request(adu: bytes) -> Request:
    """One complete request ADU (CRC checked)."""
    _check_crc(adu)
    unit, fc = adu[0], adu[1]
    address = int.from_bytes(adu[2:4], "big")
    word = int.from_bytes(adu[4:6], "big")
    if fc in SINGLE_WRITES:
        if fc == WRITE_COIL and word not in (COIL_ON, COIL_OFF):
            raise RtuFrameError("bad_value", 4, f"coil value {word:04X}", consumed=len(adu))
        return Request(unit, fc, address, 1, (int(word == COIL_ON) if fc == WRITE_COIL
                                              else word,))
    if fc not in MULTIPLE_WRITES:
        return Request(unit, fc, address, word)
    data = adu[7:-2]
    wanted = (word + 7) // 8 if fc == WRITE_COILS else 2 * word
    if len(data) != wanted:
        raise RtuFrameError("bad_length", 6, f"{len(data)} data bytes for {word} items",
                            consumed=len(adu))
    values = (_unpack_bits(data, word) if fc == WRITE_COILS
              else tuple(int.from_bytes(data[j:j + 2], "big") for j in range(0, len(data), 2)))
    return Request(unit, fc, address, word, values)


def _head_matches(buffer: bytes | bytearray, i: int, request: Request) -> bool:
    """Whether the bytes available from buffer[i] can start the answer to `request`."""
    wanted = (request.unit, request.function, request.function | EXCEPTION_FLAG)
    have = buffer[i:i + 4]
    if have[0] != wanted[0] or (len(have) > 1 and have[1] not in wanted[1:]):
        return False
    if len(have) < 3 or have[1] & EXCEPTION_FLAG:
        return True
    if request.function in BIT_READS | REGISTER_READS:
        return have[2] == response_length(request) - 5
    address = request.address.to_bytes(2, "big")
    return have[2] == address[0] and (len(have) < 4 or have[3] == address[1])


def next_response(buffer: bytes | bytearray, request: Request, *, at_end: bool = False
                  ) -> tuple[Response | None, int]:
    """The answer to `request` at the start of `buffer`; see the module docstring.

    `at_end`: no more bytes will come (the timeout passed), so an incomplete candidate at
    buffer[0] is garbage, (None, 1), not "read more": a false start in noise then cannot hide
    an answer that follows it.
    """
    for i in range(len(buffer)):
        if not _head_matches(buffer, i, request):
            continue
        if i > 0:
            return None, i
        length = 5 if len(buffer) > 1 and buffer[1] & EXCEPTION_FLAG else response_length(request)
        if len(buffer) < max(length, 2):
            return None, 1 if at_end else 0
        return decode_response(bytes(buffer[:length]), request), length
    return None, len(buffer)


def decode_response(adu: bytes, request: Request) -> Response:
    """One complete response ADU answering `request` (CRC checked)."""
    _check_crc(adu)
    unit, fc = adu[0], adu[1]
    if fc & EXCEPTION_FLAG:
        return ExceptionResponse(unit, fc & ~EXCEPTION_FLAG, adu[2])
    if fc in BIT_READS:
        return ReadResponse(unit, fc, _unpack_bits(adu[3:-2], request.count))
    if fc in REGISTER_READS:
        data = adu[3:-2]
        return ReadResponse(unit, fc, tuple(int.from_bytes(data[j:j + 2], "big")
                                            for j in range(0, len(data), 2)))
    address = int.from_bytes(adu[2:4], "big")
    value = int.from_bytes(adu[4:6], "big")
    if fc == WRITE_COIL:
        value = int(value == COIL_ON)
    return WriteResponse(unit, fc, address, value)
