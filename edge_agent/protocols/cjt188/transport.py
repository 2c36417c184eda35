"""CJ/T 188 serial bus: one RS-485 (or M-Bus) port shared by many meters. Moves frames only.

One `Cjt188Bus` per serial port; meters on it are asked strictly one at a time (`lock`). An
exchange drops bytes left over from an earlier exchange (counted as "stale"), sends the
request after the wake-up preamble and reads until the codec yields the answer or the timeout
expires. On the way it skips echoes of requests (half-duplex adapters) and rejects, counts
and goes past garbage, oversized or unterminated frames, answers from other addresses and
unexpected control codes; a bad checksum rejects the exchange at once. Every rejection is
counted in `frames_rejected(protocol="cjt188", reason=...)` and logged at most once per 10 s
per reason. After an answer the bus stays quiet for 4 character times (RS-485 turnaround).

pyserial-asyncio-fast is used only here. A port that cannot be opened, or that goes away,
raises TransportError; the next exchange opens it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NoReturn

import serial
import serial_asyncio_fast

from edge_agent.errors import DeviceTimeout, TransportError
from edge_agent.protocols.cjt188.codec import (
    BadChecksum,
    Cjt188Error,
    Frame,
    Truncated,
    classify_answer,
    decode_stream,
    encode_frame,
)

if TYPE_CHECKING:
    from edge_agent.metrics import EdgeMetrics

log = logging.getLogger(__name__)

PROTOCOL = "cjt188"
LOG_EVERY_S = 10.0
Parity = Literal["E", "N", "O"]


@dataclass(frozen=True)
class SerialSettings:
    port: str
    baudrate: int = 2400
    parity: Parity = "E"

    @property
    def char_time_s(self) -> float:
        """Time on the wire of one character: start + 8 data + parity + stop bits."""
        return (11 if self.parity != "N" else 10) / self.baudrate


class Rejections:
    """Counts rejected frames by reason (and in Prometheus when metrics are given) and logs
    each reason at most once per LOG_EVERY_S."""

    def __init__(self, where: str, metrics: EdgeMetrics | None = None) -> None:
        self.where = where
        self.metrics = metrics
        self.counts: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def count(self, reason: str, detail: str) -> None:
        self.counts[reason] += 1
        if self.metrics is not None:
            self.metrics.frames_rejected(protocol=PROTOCOL, reason=reason).inc()
        now = time.monotonic()
        if now - self._logged_at.get(reason, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged_at[reason] = now
            log.warning("%s: rejected a frame (%s): %s [%d so far]", self.where, reason, detail,
                        self.counts[reason])


class _Receiver(asyncio.Protocol):
    """Collects received bytes; `arrived` is set on new bytes and on loss of the port."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.arrived.set()


class Cjt188Bus:
    """The meters behind one serial port; one request at a time."""

    def __init__(self, settings: SerialSettings, metrics: EdgeMetrics | None = None) -> None:
        self.settings = settings
        self.lock = asyncio.Lock()
        self.rejections = Rejections(f"cjt188 {settings.port}", metrics)
        self._transport: asyncio.Transport | None = None
        self._rx: _Receiver | None = None
        self._quiet_until = 0.0
        self._ser = 0

    def next_ser(self) -> int:
        """Sequence number for the next request (SER, wraps at 256)."""
        self._ser = (self._ser + 1) & 0xFF
        return self._ser

    async def _open(self) -> _Receiver:
        if self._rx is not None and not self._rx.lost:
            return self._rx
        await self.close()
        s = self.settings
        rx = _Receiver()
        try:
            transport, _ = await serial_asyncio_fast.create_serial_connection(
                asyncio.get_running_loop(), lambda: rx, s.port, baudrate=s.baudrate,
                parity=s.parity, bytesize=serial.EIGHTBITS, stopbits=serial.STOPBITS_ONE)
        except (OSError, serial.SerialException) as err:
            raise TransportError(f"cannot open {s.port}: {err}") from err
        self._transport, self._rx = transport, rx
        return rx

    async def exchange(self, request: Frame, timeout_s: float, preamble_bytes: int = 2,
                       check_ser: bool = True) -> Frame:
        """Send `request` and return the meter's answer (an error answer included)."""
        async with self.lock:
            rx = await self._open()
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._quiet_until - loop.time()))
            if rx.buffer:
                self.rejections.count("stale", f"{len(rx.buffer)} bytes before the request")
                rx.buffer.clear()
            self._send(encode_frame(request, preamble_bytes))
            try:
                return await self._await_answer(rx, request, loop.time() + timeout_s, check_ser)
            finally:
                self._quiet_until = loop.time() + 4 * self.settings.char_time_s

    def _send(self, data: bytes) -> None:
        assert self._transport is not None
        try:
            self._transport.write(data)
        except (OSError, serial.SerialException) as err:
            raise TransportError(f"{self.settings.port}: cannot send: {err}") from err

    async def _await_answer(self, rx: _Receiver, request: Frame, deadline: float,
                            check_ser: bool) -> Frame:
        loop = asyncio.get_running_loop()
        while True:
            frame = self._take_answer(rx, request, check_ser)
            if frame is not None:
                return frame
            if rx.lost:
                await self.close()
                raise TransportError(f"{self.settings.port} went away")
            rx.arrived.clear()
            remaining = deadline - loop.time()
            try:
                await asyncio.wait_for(rx.arrived.wait(), max(remaining, 0.0))
            except TimeoutError:
                self._timed_out(rx, request)

    def _timed_out(self, rx: _Receiver, request: Frame) -> NoReturn:
        meter = request.address[::-1].hex().upper()
        if rx.buffer:
            err = Truncated(f"{self.settings.port}: the answer from {meter} stopped after "
                            f"{len(rx.buffer)} bytes", len(rx.buffer))
            self.rejections.count(err.reason, str(err))
            rx.buffer.clear()
            raise err
        raise DeviceTimeout(f"{self.settings.port}: no answer from {meter} in time")

    def _take_answer(self, rx: _Receiver, request: Frame, check_ser: bool) -> Frame | None:
        """Decode what has arrived: the answer, or None when more bytes are needed."""
        while rx.buffer:
            try:
                frame, consumed = decode_stream(rx.buffer)
            except BadChecksum as err:
                self.rejections.count(err.reason, str(err))
                rx.buffer.clear()  # the rest of a corrupted answer is not a new frame
                raise
            except Cjt188Error as err:
                self.rejections.count(err.reason, str(err))
                del rx.buffer[:err.consumed]
                continue
            del rx.buffer[:consumed]
            if frame is None:
                return None
            why_not = classify_answer(request, frame, check_ser)
            if why_not is None:
                return frame
            if why_not != "echo":
                self.rejections.count(why_not, f"frame {frame.control:02X} from "
                                      f"{frame.address[::-1].hex().upper()}")
        return None

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport, self._rx = None, None
