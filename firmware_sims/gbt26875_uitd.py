"""A simulated user information transmission device (用户信息传输装置, UITD) speaking GB/T
26875.3 over real TCP to a monitoring centre (the edge agent's gbt26875 listener).

It connects as a TCP client, sends "send data" frames with component-state and analog-value
data units (built with the agent's own codec), waits for the centre's confirm with the same
serial number and resends on a deny or after `confirm_timeout_s`, up to `max_resends` times
(clause 6.5). Serial numbers start at 0 per connection and go up by one per new frame; a resend
keeps its serial number.

    async with SimulatedUitd("127.0.0.1", port, "000000000379", [UitdComponent(131082)]) as uitd:
        delivery = await uitd.raise_fire_alarm(131082)   # Delivery(serial=0, confirmed=True...)
        uitd.corrupt_next_checksum()                     # the next frame's first try is bad
        await uitd.report_analog(131082, analog_type=5, raw=3500)
        await uitd.send_garbage(b"noise")

Fault injection: raise/clear a fire alarm, set/clear a fault, a bad checksum on the next frame,
garbage bytes, any raw bytes. Loopback only; no physics — values are what the test sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from types import TracebackType

from edge_agent.protocols.gbt26875.codec import (
    AnalogValue,
    Command,
    ComponentState,
    FrameRejected,
    Header,
    Stamp,
    UnitType,
    decode_stream,
    encode_frame,
    encode_unit,
    parse_address,
    unit_of,
)

NORMAL = 1 << 0  # state word bit 0: normal operation (0 = test mode)
FIRE_ALARM = 1 << 1
FAULT = 1 << 2


@dataclass
class UitdComponent:
    """One component behind the UITD and its current state word."""

    component_address: int
    component_type: int = 42  # point-type photoelectric smoke detector
    system_type: int = 1  # fire alarm system
    system_address: int = 1
    description: str = ""
    state: int = NORMAL


@dataclass(frozen=True)
class Delivery:
    """How one frame went: its serial, how many times it was sent, denials, confirmed or not,
    and the time label of the data it carried (None: no data)."""

    serial: int
    attempts: int
    denials: int
    confirmed: bool
    at: Stamp | None = None


@dataclass
class UitdLog:
    """What the simulated UITD saw (for tests)."""

    confirmed: list[int] = field(default_factory=list)
    denied: list[int] = field(default_factory=list)
    frames_sent: int = 0


class SimulatedUitd:
    """A UITD client; `start()`/`stop()` or `async with`. See the module docstring."""

    def __init__(self, host: str, port: int, address: str, components: Iterable[UitdComponent],
                 *, center_address: str = "000000000000", confirm_timeout_s: float = 2.0,
                 max_resends: int = 3, utc_offset_h: float = 8.0) -> None:
        self.host = host
        self.port = port
        self.address = parse_address(address)
        self.center = parse_address(center_address)
        self.components = {c.component_address: c for c in components}
        self.confirm_timeout_s = confirm_timeout_s
        self.max_resends = max_resends
        self.utc_offset_h = utc_offset_h
        self.log = UitdLog()
        self._serial = 0
        self._corrupt_next = False
        self._resend_corrupted = True
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._receiving: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[Command]] = {}
        self._sending = asyncio.Lock()

    async def start(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._serial = 0
        self._receiving = asyncio.create_task(self._receive(self._reader), name="uitd-receive")

    async def stop(self) -> None:
        if self._receiving is not None:
            self._receiving.cancel()
            await asyncio.gather(self._receiving, return_exceptions=True)
            self._receiving = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None

    async def __aenter__(self) -> SimulatedUitd:
        await self.start()
        return self

    async def __aexit__(self, _t: type[BaseException] | None, _e: BaseException | None,
                        _tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def connected(self) -> bool:
        return self._receiving is not None and not self._receiving.done()

    # ---- reports --------------------------------------------------------------------------

    async def report_states(self, *addresses: int) -> Delivery:
        """Send the state of the given components (all of them when none are given)."""
        chosen = [self.components[a] for a in addresses] or list(self.components.values())
        now = self._now()
        objects = [ComponentState(c.system_type, c.system_address, c.component_type,
                                  c.component_address, c.state, c.description, now)
                   for c in chosen]
        return await self.send_data(encode_unit(unit_of(UnitType.COMPONENT_STATE, *objects)), now)

    async def report_analog(self, component_address: int, analog_type: int, raw: int
                            ) -> Delivery:
        """Send one analog value (raw signed 16-bit, in the analog type's resolution)."""
        c = self.components[component_address]
        obj = AnalogValue(c.system_type, c.system_address, c.component_type, c.component_address,
                          analog_type, raw, self._now())
        return await self.send_data(encode_unit(unit_of(UnitType.ANALOG_VALUE, obj)), obj.at)

    async def heartbeat(self) -> Delivery:
        """A "send data" frame with no application data (the usual keep-alive)."""
        return await self.send_data(b"")

    # ---- fault injection ------------------------------------------------------------------

    async def raise_fire_alarm(self, component_address: int) -> Delivery:
        return await self._set_bit(component_address, FIRE_ALARM, True)

    async def clear_fire_alarm(self, component_address: int) -> Delivery:
        return await self._set_bit(component_address, FIRE_ALARM, False)

    async def set_fault(self, component_address: int, on: bool = True) -> Delivery:
        return await self._set_bit(component_address, FAULT, on)

    def corrupt_next_checksum(self, resend: bool = True) -> None:
        """The next frame's first transmission carries a wrong checksum; its resend (after the
        centre's deny) is good, or with resend=False there is none (a one-off bad frame)."""
        self._corrupt_next = True
        self._resend_corrupted = resend

    async def send_garbage(self, data: bytes = b"\x00garbage\xff") -> None:
        await self.send_raw(data)

    async def send_raw(self, data: bytes) -> None:
        writer = self._require_writer()
        writer.write(data)
        await writer.drain()

    # ---- the send/confirm exchange --------------------------------------------------------

    async def send_data(self, app_data: bytes, at: Stamp | None = None) -> Delivery:
        """Send one "send data" frame and wait for its confirm, resending as clause 6.5 says."""
        async with self._sending:
            serial = self._serial
            self._serial = (self._serial + 1) & 0xFFFF
            attempts = denials = 0
            while attempts <= self.max_resends:
                attempts += 1
                answer, final = await self._transmit(serial, app_data)
                if answer == Command.CONFIRM:
                    return Delivery(serial, attempts, denials, confirmed=True, at=at)
                if answer == Command.DENY:
                    denials += 1
                if final:
                    break
            return Delivery(serial, attempts, denials, confirmed=False, at=at)

    async def _transmit(self, serial: int, app_data: bytes) -> tuple[Command | None, bool]:
        """Send once; return the answer (None: none in time) and whether not to resend."""
        header = Header(serial, self._now(), self.address, self.center, Command.SEND_DATA)
        frame = bytearray(encode_frame(header, app_data))
        final = False
        if self._corrupt_next:
            self._corrupt_next = False
            frame[-3] ^= 0xFF
            final = not self._resend_corrupted
        answer: asyncio.Future[Command] = asyncio.get_running_loop().create_future()
        self._waiting[serial] = answer
        try:
            await self.send_raw(bytes(frame))
            self.log.frames_sent += 1
            return await asyncio.wait_for(answer, self.confirm_timeout_s), final
        except TimeoutError:
            return None, final
        finally:
            self._waiting.pop(serial, None)

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        buf = bytearray()
        while chunk := await reader.read(4096):
            buf += chunk
            while buf:
                try:
                    frame, used = decode_stream(buf)
                except FrameRejected as err:
                    del buf[:err.consumed]
                    continue
                if frame is None:
                    break
                del buf[:used]
                self._answered(frame.header)

    def _answered(self, header: Header) -> None:
        if header.command not in (Command.CONFIRM, Command.DENY):
            return
        (self.log.confirmed if header.command == Command.CONFIRM else self.log.denied).append(
            header.serial)
        waiting = self._waiting.get(header.serial)
        if waiting is not None and not waiting.done():
            waiting.set_result(Command(header.command))

    async def _set_bit(self, component_address: int, bit: int, on: bool) -> Delivery:
        c = self.components[component_address]
        self.components[component_address] = replace(
            c, state=(c.state | bit) if on else (c.state & ~bit))
        return await self.report_states(component_address)

    def _now(self) -> Stamp:
        return Stamp.from_epoch_ms(time.time_ns() // 1_000_000, self.utc_offset_h)

    def _require_writer(self) -> asyncio.StreamWriter:
        if self._writer is None:
            raise RuntimeError("the simulated UITD is not connected: call start() first")
        return self._writer
