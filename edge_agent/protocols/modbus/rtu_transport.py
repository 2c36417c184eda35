"""Modbus RTU transport: one RS-485 bus per serial port, strictly one request at a time.

Moves bytes only; framing is `rtu_codec`. Per request, holding `lock` (the driver takes it for
a whole poll of one unit):

    1. wait until the line has been silent for t3.5 (3.5 characters, 1.75 ms above 19200 baud)
       since the last byte sent or received, late answers included
    2. drop whatever is still in the input (a late answer of a slow device), counted "stale"
    3. write the request, then read until `rtu_codec.next_response` returns the answer or the
       unit's timeout (counted from the end of the request on the wire) passes

Rejected input is counted with `frames_rejected(protocol="modbus_rtu", reason=...)`: "bad_crc"
(the poll fails at once with a FrameError, no need to wait out the timeout), "garbage" (bytes
that cannot start the answer; skipped, the answer may still follow), "truncated" (part of an
answer at the timeout), "stale" (see 2). Each reason is logged at most once per 10 s.

Serial I/O is pyserial-asyncio-fast: the port's file descriptor sits in the event loop
(add_reader), so answer bytes reach the codec within one loop iteration, with no thread hop,
and a pty (the simulator) behaves like a UART. The port is opened lazily and exclusively
(flock), reopened after an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import serial
import serial_asyncio_fast

from device_profiles.schema import RegisterType
from edge_agent.errors import DeviceException, DeviceTimeout, FrameError, TransportError
from edge_agent.protocols.modbus.bus_budget import SerialLine
from edge_agent.protocols.modbus.rtu_codec import (
    ExceptionResponse,
    ReadResponse,
    Request,
    Response,
    RtuFrameError,
    WriteResponse,
    encode_request,
    next_response,
)

if TYPE_CHECKING:
    from edge_agent.metrics import EdgeMetrics

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0
READ_FUNCTION: dict[RegisterType, int] = {
    RegisterType.coil: 1, RegisterType.discrete_input: 2,
    RegisterType.holding: 3, RegisterType.input: 4,
}
_BIT_TABLES = frozenset({RegisterType.coil, RegisterType.discrete_input})


class _LineReceiver(asyncio.Protocol):
    """Collects received bytes and the loop time of the last one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buffer = bytearray()
        self.last_rx = 0.0
        self.arrived = asyncio.Event()
        self.lost: Exception | None = None
        self.closed: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.last_rx = self.loop.time()
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("serial port closed")
        self.arrived.set()
        if not self.closed.done():
            self.closed.set_result(None)


class ModbusRtuTransport:
    """The master of one RS-485 bus: reads registers from the unit ids on it."""

    def __init__(self, port: str, line: SerialLine, metrics: EdgeMetrics | None = None,
                 default_timeout_s: float = 0.5) -> None:
        self.port = port
        self.line = line
        self.metrics = metrics
        self.default_timeout_s = default_timeout_s
        self.lock = asyncio.Lock()
        self.units: dict[int, tuple[str, float]] = {}
        self._serial: serial_asyncio_fast.SerialTransport | None = None
        self._rx: _LineReceiver | None = None
        self._quiet_from = 0.0
        self._logged: dict[str, float] = {}

    @property
    def name(self) -> str:
        return f"modbus-rtu://{self.port}"

    def attach(self, unit: int, device: str, timeout_s: float) -> None:
        """Register the device answering as `unit` and its answer timeout; ValueError when
        another device already has that unit id on this bus."""
        owner = self.units.get(unit)
        if owner is not None and owner[0] != device:
            raise ValueError(f"{self.name}: unit {unit} is used by both {owner[0]} and {device}")
        self.units[unit] = (device, timeout_s)

    async def read(self, table: RegisterType, start: int, count: int,
                   unit: int) -> list[int] | list[bool]:
        """Read `count` registers/bits of `table` from `start` on `unit` (caller holds `lock`)."""
        response = await self.transact(Request(unit, READ_FUNCTION[table], start, count))
        if not isinstance(response, ReadResponse):
            raise FrameError(f"{self.name} unit {unit}: unexpected answer {response}")
        if table in _BIT_TABLES:
            return [bool(v) for v in response.values]
        return list(response.values)

    async def write(self, function_code: int, address: int, values: list[int] | list[bool],
                    unit: int) -> None:
        """Write with function code 5, 6, 15 or 16 from `address` on `unit` (the caller holds
        `lock`); the device's echo is checked by `rtu_codec.next_response`."""
        words = tuple(int(v) for v in values)
        response = await self.transact(Request(unit, function_code, address, len(words), words))
        if not isinstance(response, WriteResponse):
            raise FrameError(f"{self.name} unit {unit}: unexpected answer {response}")

    async def transact(self, request: Request) -> Response:
        """Send one request and return its answer; DeviceException for an exception answer.
        The caller holds `lock`."""
        where = f"{self.name} unit {request.unit} FC{request.function} {request.address}"
        timeout_s = self.units.get(request.unit, ("", self.default_timeout_s))[1]
        adu = encode_request(request)
        rx = await self._open()
        loop = asyncio.get_running_loop()
        await self._wait_for_silence(loop, rx)
        if rx.buffer:
            self._reject("stale", f"{where}: dropped {len(rx.buffer)} bytes that arrived "
                         "after the last answer (a slow device?)")
        self._flush(rx)
        assert self._serial is not None
        self._serial.write(adu)
        sent = loop.time()
        tx_end = sent + self.line.wire_s(len(adu))
        self._quiet_from = tx_end + self.line.silence_s
        try:
            response = await self._receive(rx, request, tx_end + timeout_s,
                                           f"{where} (timeout {timeout_s:g} s)")
        finally:
            if rx.last_rx > sent:
                self._quiet_from = max(self._quiet_from, rx.last_rx + self.line.silence_s)
        if isinstance(response, ExceptionResponse):
            raise DeviceException(f"{where}: Modbus exception code {response.code}",
                                  response.code)
        return response

    async def _receive(self, rx: _LineReceiver, request: Request, deadline: float,
                       where: str) -> Response:
        while True:
            try:
                frame, used = next_response(rx.buffer, request)
            except RtuFrameError as err:
                rx.buffer.clear()
                self._reject(err.reason, f"{where}: {err}")
                raise FrameError(f"{where}: {err}") from err
            if used:
                del rx.buffer[:used]
                if frame is not None:
                    return frame
                self._reject("garbage", f"{where}: skipped {used} bytes before the answer")
                continue
            if rx.lost is not None:
                await self.close()
                raise TransportError(f"{where}: {rx.lost}")
            rx.arrived.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await rx.arrived.wait()
            except TimeoutError:
                break
        return self._salvage(rx, request, where)

    def _salvage(self, rx: _LineReceiver, request: Request, where: str) -> Response:
        """At the timeout: an answer may still sit behind a false start in noise."""
        dropped = 0
        while rx.buffer:
            try:
                frame, used = next_response(rx.buffer, request, at_end=True)
            except RtuFrameError as err:
                frame, used = None, err.consumed
            del rx.buffer[:used]
            if frame is not None:
                self._reject("garbage", f"{where}: skipped {dropped} bytes before the answer")
                return frame
            dropped += used
        if dropped:
            self._reject("truncated", f"{where}: {dropped} bytes but no answer at the timeout")
        raise DeviceTimeout(f"{where}: no answer in time")

    async def _wait_for_silence(self, loop: asyncio.AbstractEventLoop,
                                rx: _LineReceiver) -> None:
        while True:
            ready = max(self._quiet_from, rx.last_rx + self.line.silence_s)
            delay = ready - loop.time()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    def _flush(self, rx: _LineReceiver) -> None:
        rx.buffer.clear()
        port = self._serial.serial if self._serial is not None else None
        if port is not None:
            try:
                port.reset_input_buffer()
            except (serial.SerialException, OSError) as err:
                log.debug("%s: cannot flush input: %s", self.name, err)

    async def _open(self) -> _LineReceiver:
        if self._rx is not None and self._rx.lost is None:
            return self._rx
        await self.close()
        loop = asyncio.get_running_loop()
        try:
            transport, rx = await serial_asyncio_fast.create_serial_connection(
                loop, lambda: _LineReceiver(loop), self.port, baudrate=self.line.baudrate,
                bytesize=self.line.bytesize, parity=self.line.parity,
                stopbits=self.line.stopbits, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as err:
            raise TransportError(f"{self.name}: cannot open the port: {err}") from err
        assert isinstance(rx, _LineReceiver)
        self._serial, self._rx = transport, rx
        self._flush(rx)
        log.info("%s open at %s", self.name, self.line.describe())
        return rx

    def _reject(self, reason: str, message: str) -> None:
        if self.metrics is not None:
            self.metrics.frames_rejected(protocol="modbus_rtu", reason=reason).inc()
        now = time.monotonic()
        if now - self._logged.get(reason, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[reason] = now
            log.warning("rejected (%s): %s", reason, message)
        else:
            log.debug("rejected (%s): %s", reason, message)

    async def close(self) -> None:
        """Close the port (the next request reopens it)."""
        transport, rx = self._serial, self._rx
        self._serial = self._rx = None
        if transport is None or rx is None:
            return
        transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(rx.closed), 2.0)
        except TimeoutError:
            log.debug("%s: close did not finish in 2 s", self.name)
