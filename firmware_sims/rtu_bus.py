"""A simulated RS-485 bus of Modbus RTU devices on a pseudo-terminal.

The simulator holds the pty master; the edge agent opens the slave's tty path (`sim.port`) with
pyserial exactly as it would open /dev/ttyUSB0. Many unit ids share the bus, each a device model
laid out by its profile (the registers of firmware_sims.modbus_server.UnitContext); profiles of
a domain without a physics model (e.g. fire) report their initial or forced values. Units are
named "<bus name>:<unit>" (`name`, default "rtu") in the control API's state.

A pty has no baud rate, so the simulator keeps the bus's time itself:

    request   arrives at once; it is taken to end len x char time after its first byte, as on
              a real line, and a request that starts less than t3.5 after the previous frame
              ended counts as a silence violation (`stats.silence_violations`)
    answer    starts `turnaround_s` (default 5 ms, plus the unit's `slow` delay) after the
              request's end; its bytes are written as they would leave a UART, byte k at
              start + (k+1) x char time, so an answer of N bytes takes N x char time
    unknown or muted unit ids get no answer (the master times out); requests with a bad CRC
              are ignored, as a real device does

Fault injection (coroutines, like the rest of the API): `mute`, `slow`, `corrupt_next` (flip the
CRC of the unit's next answers), `force` / `release` a point's value.

    async with RtuBusSim({1: model_for(profile)}, SerialLine(9600, "E", 1)) as sim:
        ... open sim.port ...

`BusSimThread` runs a simulator on its own event loop in a thread (for synchronous tests and the
benchmark, so the master's loop does not share the simulator's timing).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import tty
from collections import Counter
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from device_profiles.schema import Profile, RegisterType
from edge_agent.protocols.modbus.bus_budget import SerialLine
from edge_agent.protocols.modbus.rtu_codec import (
    BIT_READS,
    COUNT_LIMITS,
    MULTIPLE_WRITES,
    REGISTER_READS,
    ExceptionResponse,
    ReadResponse,
    Request,
    Response,
    RtuFrameError,
    WriteResponse,
    encode_response,
    next_request,
)
from firmware_sims.clock import DISTRICT_TZ, SimClock
from firmware_sims.device import DeviceModel, Value
from firmware_sims.modbus_server import SimUnit
from firmware_sims.models import model_or_fixed

DEFAULT_TURNAROUND_S = 0.005
ILLEGAL_ADDRESS, ILLEGAL_VALUE = 2, 3
_TABLES: dict[int, RegisterType] = {1: RegisterType.coil, 2: RegisterType.discrete_input,
                                    3: RegisterType.holding, 4: RegisterType.input}
T = TypeVar("T")


def model_for(profile: Profile, initial: Mapping[str, Value] | None = None, *,
              physics: bool = False, seed: int = 0) -> DeviceModel:
    """The domain's model of `profile` (firmware_sims.models), else a FixedModel."""
    return model_or_fixed(profile, datetime.now(DISTRICT_TZ), seed=seed, initial=initial,
                          physics=physics)


@dataclass
class BusStats:
    """What the simulator saw on the bus."""

    requests: Counter[int] = field(default_factory=Counter)
    answers: Counter[int] = field(default_factory=Counter)
    corrupted: int = 0
    bad_requests: int = 0
    garbage_bytes: int = 0
    silence_violations: int = 0
    dropped_bytes: int = 0
    min_gap_s: float = float("inf")


class RtuBusSim:
    """Modbus RTU devices on one simulated RS-485 bus; see the module docstring."""

    def __init__(self, units: Mapping[int, DeviceModel], line: SerialLine | None = None, *,
                 turnaround_s: float = DEFAULT_TURNAROUND_S, clock: SimClock | None = None,
                 name: str = "rtu") -> None:
        self.line = line or SerialLine()
        self.turnaround_s = turnaround_s
        self.clock = clock
        self.name = name
        self.units = {uid: SimUnit(0, uid, model, bus=name) for uid, model in units.items()}
        self.delays: dict[int, float] = {}
        self.corrupt: Counter[int] = Counter()
        self.stats = BusStats()
        self.port = ""
        self._master = self._slave = -1
        self._rx = bytearray()
        self._first_at = 0.0
        self._busy_until = float("-inf")
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._sim_time: dict[int, datetime] = {}

    async def __aenter__(self) -> RtuBusSim:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the pty pair and answer requests; `port` is the path to give the master."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        for unit in self.units.values():
            unit.publish()
        loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        loop.add_reader(self._master, self._on_readable, loop)
        self._task = asyncio.create_task(self._serve(loop), name=f"rtu-bus-sim {self.port}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._master >= 0:
            asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            os.close(self._slave)
            self._master = self._slave = -1

    # -- fault injection and state ---------------------------------------------------------

    async def mute(self, unit: int, muted: bool = True) -> None:
        """A muted unit does not answer at all."""
        self._unit(unit).muted = muted

    async def slow(self, unit: int, extra_s: float) -> None:
        """Answer `extra_s` later than the turnaround (0 restores it)."""
        self._unit(unit)
        self.delays[unit] = extra_s

    async def corrupt_next(self, unit: int, count: int = 1) -> None:
        """Send the unit's next `count` answers with a wrong CRC."""
        self._unit(unit)
        self.corrupt[unit] += count

    async def force(self, unit: int, point: str, value: object) -> None:
        """Report `value` for `point` until released (ValueError if the register cannot hold
        it, KeyError for an unknown point)."""
        target = self._unit(unit)
        target.model.force(point, value)
        target.publish()

    async def release(self, unit: int, point: str) -> None:
        target = self._unit(unit)
        target.model.release(point)
        target.publish()

    def values(self, unit: int) -> dict[str, Value]:
        """Engineering values the unit reports now."""
        return self._unit(unit).model.values()

    def _unit(self, unit: int) -> SimUnit:
        try:
            return self.units[unit]
        except KeyError:
            raise KeyError(f"no unit {unit} on this bus; units: {sorted(self.units)}") from None

    # -- the bus ----------------------------------------------------------------------------

    def _on_readable(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return
        if not data:
            return
        now = loop.time()
        if not self._rx:
            self._first_at = now
            gap = now - self._busy_until
            self.stats.min_gap_s = min(self.stats.min_gap_s, gap)
            if gap < self.line.silence_s:
                self.stats.silence_violations += 1
        self._rx += data
        assert self._arrived is not None
        self._arrived.set()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        arrived = self._arrived
        assert arrived is not None
        while True:
            await arrived.wait()
            arrived.clear()
            at_end = False
            while self._rx:
                request, used, started = self._take_request(at_end)
                if used == 0:  # incomplete: the frame ends once the line is silent for t3.5
                    try:
                        async with asyncio.timeout(2 * self.line.silence_s):
                            await arrived.wait()
                        arrived.clear()
                    except TimeoutError:
                        at_end = True
                    continue
                if request is not None:
                    end = started + self.line.wire_s(used)
                    self._busy_until = max(self._busy_until, end)
                    await self._answer(loop, request, end)

    def _take_request(self, at_end: bool) -> tuple[Request | None, int, float]:
        started = self._first_at
        try:
            request, used = next_request(self._rx, at_end=at_end)
        except RtuFrameError as err:
            self.stats.bad_requests += 1
            request, used = None, err.consumed
        else:
            if request is None:
                self.stats.garbage_bytes += used
        del self._rx[:used]
        return request, used, started

    async def _answer(self, loop: asyncio.AbstractEventLoop, request: Request,
                      request_end: float) -> None:
        self.stats.requests[request.unit] += 1
        unit = self.units.get(request.unit)
        if unit is None or unit.muted:
            return
        adu = encode_response(self._respond(unit, request))
        if self.corrupt[request.unit] > 0:
            self.corrupt[request.unit] -= 1
            self.stats.corrupted += 1
            adu = adu[:-2] + bytes((adu[-2] ^ 0xFF, adu[-1]))
        start = (max(loop.time(), request_end) + self.turnaround_s
                 + self.delays.get(request.unit, 0.0))
        await self._send_paced(loop, adu, start)
        self.stats.answers[request.unit] += 1

    def _respond(self, unit: SimUnit, request: Request) -> Response:
        self._step(unit)
        fc = request.function
        if fc in BIT_READS | REGISTER_READS:
            if not 1 <= request.count <= COUNT_LIMITS[fc]:
                return ExceptionResponse(request.unit, fc, ILLEGAL_VALUE)
            try:
                values = unit.context.read(_TABLES[fc], request.address, request.count)
            except IndexError:
                return ExceptionResponse(request.unit, fc, ILLEGAL_ADDRESS)
            return ReadResponse(request.unit, fc, tuple(int(v) for v in values))
        written: list[int] | list[bool] = list(request.values)
        if fc in {5, 15}:
            written = [bool(v) for v in request.values]
        if unit.context.setValues(fc, request.address, written) is not None:
            return ExceptionResponse(request.unit, fc, ILLEGAL_ADDRESS)
        unit.publish()
        value = request.count if fc in MULTIPLE_WRITES else request.values[0]
        return WriteResponse(request.unit, fc, request.address, value)

    def _step(self, unit: SimUnit) -> None:
        if self.clock is None:
            return
        now = self.clock.now()
        last = self._sim_time.get(unit.unit_id, now)
        self._sim_time[unit.unit_id] = now
        unit.model.step((now - last).total_seconds(), now)
        unit.publish()

    async def _send_paced(self, loop: asyncio.AbstractEventLoop, adu: bytes,
                          start: float) -> None:
        """Write `adu` as a UART at the line's baud rate would clock it out from `start`."""
        char_s = self.line.char_s
        self._busy_until = float("inf")  # a request now would collide with this answer
        sent = 0
        while sent < len(adu):
            now = loop.time()
            due = min(len(adu), int((now - start) / char_s + 1e-9))
            if due > sent:
                if due == len(adu):
                    self._busy_until = now  # the master cannot see the last byte before this
                self._write(adu[sent:due])
                sent = due
                continue
            await asyncio.sleep(start + (sent + 1) * char_s - now)

    def _write(self, chunk: bytes) -> None:
        try:
            os.write(self._master, chunk)
        except (BlockingIOError, OSError):
            self.stats.dropped_bytes += len(chunk)  # nobody reads the bus: bytes are lost


class BusSimThread:
    """Runs an RtuBusSim on its own event loop in a daemon thread."""

    def __init__(self, sim: RtuBusSim) -> None:
        self.sim = sim
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start the simulator; return its port once it answers."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="rtu-bus-sim",
                                        daemon=True)
        self._thread.start()
        self.call(self.sim.start())
        return self.sim.port

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        """Run a coroutine of the simulator (e.g. `sim.corrupt_next(1)`) on its loop."""
        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self.call(self.sim.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None
