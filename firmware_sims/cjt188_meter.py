"""A CJ/T 188 meter bus on a pseudo-terminal: several meters answering by address.

The simulator holds the pty master; the edge agent opens `sim.port` (the slave tty) with
pyserial exactly as it would open /dev/ttyUSB0. Each meter's cumulative flow grows with its
flow rate (m³/h, over real time), its clock follows the district's wall clock (UTC+8) unless
fixed, and its status byte carries the valve state and battery flag. Frames are built with the
agent's own codec (edge_agent.protocols.cjt188).

Meters answer read-data (901F) to their address and the broadcast address, and read-address
(810A) to the broadcast address. A broadcast that several meters answer collides on the wire:
the simulator sends the bytes of their answers OR-ed together, as a real bus would mangle them.
Unknown data identifiers get an error answer (C1). Fault injection: `corrupt_next_answer`,
`truncate_next_answer`, `refuse_next_read` (an error answer), `mute`, `prefix_next_answer`
(noise or another meter's frame before the answer), `set_unit_code`, `set_valve`,
`set_battery_low`, `set_cumulative`, `set_flow_rate`, `set_clock`; `echo` repeats each
request back first, as some half-duplex adapters do.

    async with Cjt188MeterBus([SimMeter("78330123456789", cumulative_m3=Decimal("12.34"))]) as sim:
        ...  # open sim.port at 2400 8E1
"""

from __future__ import annotations

import asyncio
import os
import time
import tty
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from edge_agent.protocols.cjt188.codec import (
    ANY_METER_TYPE,
    BROADCAST,
    DI_ADDRESS,
    DI_METERING,
    Cjt188Error,
    Frame,
    Function,
    answer,
    decode_di,
    decode_stream,
    encode_frame,
    parse_address,
)
from edge_agent.protocols.cjt188.metering import (
    UNIT_M3,
    MeterClock,
    MeteringData,
    Status,
    ValveState,
    encode_metering,
)
from firmware_sims.clock import DISTRICT_TZ
from firmware_sims.errors import FaultError

CENT = Decimal("0.01")


@dataclass
class SimMeter:
    """One meter on the bus; `address` as printed on it (14 hex digits)."""

    address: str
    meter_type: int = 0x10
    cumulative_m3: Decimal = Decimal(0)
    settlement_m3: Decimal | None = None
    flow_m3_per_h: Decimal = Decimal(0)
    valve: ValveState = ValveState.OPEN
    battery_low: bool = False
    clock: datetime | None = None
    vendor_status: int = 0
    volume_unit: int = UNIT_M3
    unit_code_override: int | None = None
    muted: bool = False
    corrupt_next: int = 0
    truncate_next: int | None = None
    refuse_next: int = 0
    prefix_next: bytes = b""
    _updated_at: float | None = field(default=None, repr=False)

    @property
    def wire_address(self) -> bytes:
        return parse_address(self.address)

    def advance(self, now: float) -> None:
        """Let water flow from the last update until `now` (monotonic seconds)."""
        if self._updated_at is not None and self.flow_m3_per_h:
            hours = Decimal(now - self._updated_at) / 3600
            self.cumulative_m3 += self.flow_m3_per_h * hours
        self._updated_at = now

    def metering(self, wall: datetime) -> MeteringData:
        settlement = None if self.settlement_m3 is None else self.settlement_m3.quantize(
            CENT, ROUND_DOWN)
        return MeteringData(
            cumulative_flow=self.cumulative_m3.quantize(CENT, ROUND_DOWN),
            settlement_flow=settlement, clock=MeterClock.of(self.clock or wall),
            status=Status.of(self.valve, self.battery_low, st1=self.vendor_status))


class Cjt188MeterBus:
    """Meters behind one pty; `port` is the tty path the agent opens."""

    def __init__(self, meters: Iterable[SimMeter], reply_delay_s: float = 0.005,
                 answer_preamble: int = 2, echo: bool = False,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(DISTRICT_TZ),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.meters = {m.wire_address: m for m in meters}
        self.reply_delay_s = reply_delay_s
        self.answer_preamble = answer_preamble
        self.echo = echo
        self.stats: Counter[str] = Counter()
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._master: int | None = None
        self._slave: int | None = None
        self._rx = bytearray()
        self.port = ""

    async def __aenter__(self) -> Cjt188MeterBus:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing until the agent configures it
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        asyncio.get_running_loop().add_reader(self._master, self._readable)

    async def stop(self) -> None:
        if self._master is None:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    # --- fault injection and state (call from the simulator's event loop) ---------------

    def meter(self, address: str) -> SimMeter:
        try:
            return self.meters[parse_address(address)]
        except (KeyError, ValueError):
            raise FaultError(f"no meter {address!r} on this bus") from None

    def corrupt_next_answer(self, address: str, count: int = 1) -> None:
        """The next `count` answers of the meter carry a wrong checksum."""
        self.meter(address).corrupt_next += count

    def truncate_next_answer(self, address: str, keep_bytes: int) -> None:
        """The meter's next answer stops after `keep_bytes` bytes (a dropped line)."""
        self.meter(address).truncate_next = keep_bytes

    def refuse_next_read(self, address: str, count: int = 1) -> None:
        """The next `count` read-data requests get an error answer (C = C1)."""
        self.meter(address).refuse_next += count

    def mute(self, address: str, muted: bool = True) -> None:
        self.meter(address).muted = muted

    def prefix_next_answer(self, address: str, data: bytes) -> None:
        """Send `data` (noise, another meter's frame) just before the meter's next answer."""
        self.meter(address).prefix_next = data

    def set_valve(self, address: str, valve: ValveState) -> None:
        self.meter(address).valve = valve

    def set_battery_low(self, address: str, low: bool = True) -> None:
        self.meter(address).battery_low = low

    def set_cumulative(self, address: str, m3: Decimal) -> None:
        meter = self.meter(address)
        meter.cumulative_m3 = m3
        meter.advance(self._monotonic())

    def set_flow_rate(self, address: str, m3_per_h: Decimal) -> None:
        meter = self.meter(address)
        meter.advance(self._monotonic())
        meter.flow_m3_per_h = m3_per_h

    def set_unit_code(self, address: str, code: int | None) -> None:
        """Send `code` as the unit of both volumes (a misconfigured meter); None: the real one."""
        self.meter(address).unit_code_override = code

    def set_clock(self, address: str, when: datetime | None) -> None:
        """Fix the meter's clock at `when` (local time); None: follow the wall clock."""
        self.meter(address).clock = when

    # --- the bus -----------------------------------------------------------------------

    def _readable(self) -> None:
        assert self._master is not None
        try:
            self._rx += os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO: nobody holds the slave open
            self._rx.clear()
            return
        self._serve()

    def _serve(self) -> None:
        while self._rx:
            try:
                frame, consumed = decode_stream(self._rx)
            except Cjt188Error as err:
                self.stats[f"rejected_{err.reason}"] += 1
                del self._rx[:err.consumed]
                continue
            del self._rx[:consumed]
            if frame is None:
                return
            if not frame.from_meter:
                self._request(frame)

    def _request(self, request: Frame) -> None:
        self.stats["requests"] += 1
        if self.echo:
            self._write(encode_frame(request))
        meters = self._addressed(request)
        answers = [b for b in (self._answer(m, request) for m in meters) if b is not None]
        if not answers:
            return
        data = answers[0] if len(answers) == 1 else _collide(answers)
        self.stats["collisions" if len(answers) > 1 else "answers"] += 1
        asyncio.get_running_loop().call_later(self.reply_delay_s, self._write, data)

    def _addressed(self, request: Frame) -> list[SimMeter]:
        if request.address == BROADCAST:
            candidates = list(self.meters.values())
        else:
            one = self.meters.get(request.address)
            candidates = [one] if one is not None else []
        return [m for m in candidates if not m.muted
                and request.meter_type in (m.meter_type, ANY_METER_TYPE)]

    def _answer(self, meter: SimMeter, request: Frame) -> bytes | None:
        di = decode_di(request.data[:2]) if len(request.data) >= 3 else None
        if request.function == Function.READ_ADDRESS and di == DI_ADDRESS:
            if request.address != BROADCAST:
                return None
            frame = answer(request, meter.meter_type, meter.wire_address)
        elif request.function == Function.READ_DATA and di == DI_METERING and meter.refuse_next:
            meter.refuse_next -= 1
            frame = _refusal(meter, request)
        elif request.function == Function.READ_DATA and di == DI_METERING:
            meter.advance(self._monotonic())
            payload = encode_metering(meter.metering(self._wall_clock()), meter.meter_type,
                                      meter.volume_unit)
            if meter.unit_code_override is not None:  # a misconfigured meter
                payload = _with_unit_codes(payload, meter.unit_code_override)
            frame = answer(request, meter.meter_type, meter.wire_address, payload)
        elif request.function == Function.READ_DATA and len(request.data) >= 3:
            frame = _refusal(meter, request)
        else:
            return None
        return self._damaged(meter, encode_frame(frame, self.answer_preamble))

    @staticmethod
    def _damaged(meter: SimMeter, answer_bytes: bytes) -> bytes:
        """Apply the meter's pending faults to its answer."""
        raw = bytearray(answer_bytes)
        if meter.corrupt_next:
            meter.corrupt_next -= 1
            raw[-2] ^= 0xFF
        if meter.truncate_next is not None:
            del raw[meter.truncate_next:]
            meter.truncate_next = None
        prefix, meter.prefix_next = meter.prefix_next, b""
        return prefix + bytes(raw)

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return
        try:
            os.write(self._master, data)
        except OSError:
            self.stats["write_failed"] += 1
            return
        self.stats["writes"] += 1


def _with_unit_codes(payload: bytes, code: int) -> bytes:
    """A water-meter payload whose two unit bytes say `code`."""
    return payload[:4] + bytes([code]) + payload[5:9] + bytes([code]) + payload[10:]


def _refusal(meter: SimMeter, request: Frame) -> Frame:
    """An error answer: SER and the meter's status."""
    st = Status.of(meter.valve, meter.battery_low)
    return answer(request, meter.meter_type, meter.wire_address, bytes([st.st0, st.st1]),
                  error=True)


def _collide(answers: list[bytes]) -> bytes:
    """What two meters talking at once leave on the wire: their bytes OR-ed together."""
    size = max(len(a) for a in answers)
    out = bytearray(size)
    for a in answers:
        for k, byte in enumerate(a):
            out[k] |= byte
    return bytes(out)
