"""Modbus driver: profile points -> planned reads -> raw values by point name.

Commands (edge_agent/commands/executor.py) use `write_point` and `read_point`: one write or one
point read, each holding the bus lock for just that request (a poll in progress finishes
first), without the unit backoff (an operator's command always tries the device).

The same driver serves Modbus TCP (`transport.ModbusTcpTransport`) and Modbus RTU
(`rtu_transport.ModbusRtuTransport`): both expose `lock` and `read(table, start, count, unit)`.
A poll holds the bus lock for all reads of its unit, so units on one bus take turns poll by poll
(asyncio.Lock is FIFO: round robin). The first failing read ends the poll.

On a shared RS-485 bus a dead unit costs a whole timeout per attempt, so RTU drivers get a
`UnitBackoff`: after `after_timeouts` timeouts in a row the unit is skipped, without touching
the bus, for 1, 2, 4, ... up to `max_skip` of its poll cycles, but never longer than
`max_gap_s` between attempts. A skip raises `UnitBackedOff` (a DeviceTimeout, so the scheduler
counts it as a failed poll and applies its own interval backoff, edge_agent/scheduler.py).
`max_gap_s` equals the scheduler's MAX_BACKOFF_S so that, once the scheduler has stretched the
interval to its cap, every cycle tries the unit again: recovery is seen within about a minute.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from device_profiles.schema import (
    ModbusRtuProtocol,
    ModbusTcpProtocol,
    Point,
    Profile,
    RegisterType,
)
from edge_agent.errors import DeviceException, DeviceTimeout
from edge_agent.protocols.base import Raw
from edge_agent.protocols.modbus.codec import decode_point, encode_point
from edge_agent.protocols.modbus.planner import ReadRequest, plan_reads
from edge_agent.scaling import Value, to_raw


class RegisterTransport(Protocol):
    """What the driver needs of a Modbus transport."""

    lock: asyncio.Lock

    async def read(self, table: RegisterType, start: int, count: int,
                   unit: int) -> list[int] | list[bool]: ...

    async def write(self, function_code: int, address: int, values: list[int] | list[bool],
                    unit: int) -> None: ...


class UnitBackedOff(DeviceTimeout):
    """The unit is skipped this cycle after timing out repeatedly."""


@dataclass
class UnitBackoff:
    """Skip a unit that keeps timing out for an exponentially growing number of its cycles."""

    after_timeouts: int = 2
    max_skip: int = 16
    max_gap_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    timeouts: int = field(default=0, init=False)
    skip_left: int = field(default=0, init=False)
    last_attempt: float = field(default=float("-inf"), init=False)

    def skip(self) -> bool:
        """True when this cycle should not touch the bus (and counts it as skipped)."""
        if self.skip_left > 0 and self.clock() - self.last_attempt < self.max_gap_s:
            self.skip_left -= 1
            return True
        self.last_attempt = self.clock()
        return False

    def timed_out(self) -> None:
        self.timeouts += 1
        if self.timeouts >= self.after_timeouts:
            self.skip_left = min(self.max_skip, 2 ** (self.timeouts - self.after_timeouts))

    def answered(self) -> None:
        self.timeouts = 0
        self.skip_left = 0


class ModbusDriver:
    """Reads one unit id on a shared Modbus TCP or RTU transport."""

    def __init__(self, profile: Profile, transport: RegisterTransport, unit: int,
                 backoff: UnitBackoff | None = None) -> None:
        assert isinstance(profile.protocol, ModbusTcpProtocol | ModbusRtuProtocol)
        self.transport = transport
        self.unit = unit
        self.backoff = backoff
        self.requests: list[ReadRequest] = plan_reads(
            profile.points, profile.protocol)  # type: ignore[arg-type]

    async def read(self) -> dict[str, Raw]:
        backoff = self.backoff
        if backoff is not None and backoff.skip():
            raise UnitBackedOff(f"unit {self.unit} skipped after {backoff.timeouts} timeouts "
                                f"in a row ({backoff.skip_left} more skips at most)")
        try:
            raw = await self._read_all()
        except DeviceTimeout:
            if backoff is not None:
                backoff.timed_out()
            raise
        except DeviceException:
            if backoff is not None:
                backoff.answered()
            raise
        if backoff is not None:
            backoff.answered()
        return raw

    async def _read_all(self) -> dict[str, Raw]:
        raw: dict[str, Raw] = {}
        async with self.transport.lock:
            for request in self.requests:
                values = await self.transport.read(request.table, request.start, request.count,
                                                   self.unit)
                for point in request.points:
                    raw[point.name] = decode_point(point, request.start, values)
        return raw

    async def write_point(self, point: Point, value: Value, function_code: int) -> None:
        """Write the engineering `value` to `point` (raw = (value - offset) / scale, encoded
        like the point is read) with `function_code` (5, 6, 15 or 16)."""
        if point.register_type == RegisterType.holding and point.bit is not None:
            raise ValueError(f"point {point.name} is one bit of a register: not writable alone")
        words = encode_point(point, to_raw(point, value))
        async with self.transport.lock:
            await self.transport.write(function_code, point.address, words, self.unit)

    async def read_point(self, point: Point) -> Raw:
        """Read one point now (raw, unscaled)."""
        async with self.transport.lock:
            values = await self.transport.read(point.register_type, point.address, point.words,
                                               self.unit)
        return decode_point(point, point.address, values)
