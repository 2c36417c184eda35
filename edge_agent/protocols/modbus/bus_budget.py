"""RS-485 bus time: what the configured polls of a Modbus RTU bus need against what it has.

Pure: no I/O, time or logging. One request/response cycle on the wire takes

    request bytes x char time + turnaround + response bytes x char time + silence

    char time   bits per character / baud rate: 1 start + 8 data + parity (0/1) + stop (1/2),
                so 11 bits for 8E1, 8O1 and 8N2, 10 bits for 8N1 (Modbus serial line §2.5.1
                asks for 11 bits: without parity, 2 stop bits; many devices use 8N1 anyway)
    silence     3.5 characters between frames; fixed 1.75 ms above 19200 baud (§2.5.1.1)
    turnaround  the device's time from the end of the request to its first answer byte
                (assumed `DEFAULT_TURNAROUND_S` unless given; the spec has no figure, devices
                take 1-50 ms)

A device needs the sum over its planned reads once per poll interval; a bus is over-subscribed
when its devices together need more than one second of bus time per second. A dead unit costs
a whole timeout per attempt: that is what the driver's per-unit backoff limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from device_profiles.schema import ModbusRtuProtocol, Profile, RegisterType
from edge_agent.protocols.modbus.planner import ReadRequest, plan_reads

Parity = Literal["N", "E", "O"]
DEFAULT_TURNAROUND_S = 0.005
FAST_SILENCE_S = 0.00175
FAST_BAUD = 19200
REQUEST_BYTES = 8  # unit, FC, address(2), count(2), CRC(2)
_BIT_TABLES = frozenset({RegisterType.coil, RegisterType.discrete_input})


@dataclass(frozen=True)
class SerialLine:
    """How bytes are clocked onto the line (the same for every device on one bus)."""

    baudrate: int = 9600
    parity: Parity = "E"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def bits_per_char(self) -> int:
        return 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits

    @property
    def char_s(self) -> float:
        """Seconds one character takes on the wire."""
        return self.bits_per_char / self.baudrate

    @property
    def silence_s(self) -> float:
        """The inter-frame silence t3.5."""
        return FAST_SILENCE_S if self.baudrate > FAST_BAUD else 3.5 * self.char_s

    def wire_s(self, n_bytes: int) -> float:
        return n_bytes * self.char_s

    def describe(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


def response_bytes(request: ReadRequest) -> int:
    """Bytes of the normal answer to one planned read."""
    if request.table in _BIT_TABLES:
        return 5 + (request.count + 7) // 8
    return 5 + 2 * request.count


def cycle_s(line: SerialLine, request: ReadRequest,
            turnaround_s: float = DEFAULT_TURNAROUND_S) -> float:
    """Bus time of one request/response cycle, silence after it included."""
    return (line.wire_s(REQUEST_BYTES + response_bytes(request)) + turnaround_s
            + line.silence_s)


def poll_s(line: SerialLine, requests: Sequence[ReadRequest],
           turnaround_s: float = DEFAULT_TURNAROUND_S) -> float:
    """Bus time of one poll of a device (all its planned reads)."""
    return sum(cycle_s(line, r, turnaround_s) for r in requests)


@dataclass(frozen=True)
class DeviceLoad:
    device: str
    poll_s: float
    interval_s: float

    @property
    def share(self) -> float:
        """Bus seconds per second this device needs."""
        return self.poll_s / self.interval_s


@dataclass(frozen=True)
class BusBudget:
    port: str
    line: SerialLine
    devices: tuple[DeviceLoad, ...]

    @property
    def needed_s_per_s(self) -> float:
        return sum(d.share for d in self.devices)

    @property
    def over_subscribed(self) -> bool:
        return self.needed_s_per_s > 1.0

    def warning(self) -> str:
        busiest = sorted(self.devices, key=lambda d: d.share, reverse=True)[:3]
        worst = ", ".join(f"{d.device} {d.poll_s * 1000:.0f} ms every {d.interval_s:g} s"
                          for d in busiest)
        return (f"RS-485 bus {self.port} at {self.line.describe()} is over-subscribed: its "
                f"{len(self.devices)} devices need {self.needed_s_per_s:.2f} s of bus time per "
                f"second (busiest: {worst}); polls will run late. Raise the baud rate, "
                f"lengthen interval_s or split the bus")


class _Device(Protocol):
    id: str
    interval_s: float | None


def bus_budgets(instances: Iterable[tuple[_Device, object, Profile]],
                turnaround_s: float = DEFAULT_TURNAROUND_S) -> list[BusBudget]:
    """The budget of every RTU bus among polled (device, params, profile) instances."""
    buses: dict[str, tuple[SerialLine, list[DeviceLoad]]] = {}
    for device, params, profile in instances:
        if not isinstance(profile.protocol, ModbusRtuProtocol):
            continue
        assert params is not None and hasattr(params, "serial_port")
        line: SerialLine = params.line  # type: ignore[attr-defined]
        requests = plan_reads(profile.points, profile.protocol)  # type: ignore[arg-type]
        load = DeviceLoad(device.id, poll_s(line, requests, turnaround_s),
                          device.interval_s or profile.poll_interval_s)
        buses.setdefault(params.serial_port, (line, []))[1].append(load)
    return [BusBudget(port, line, tuple(loads)) for port, (line, loads) in sorted(buses.items())]


def rtu_bus_warnings(instances: Iterable[tuple[_Device, object, Profile]]) -> list[str]:
    """One warning per over-subscribed RTU bus; for the app to log at start-up."""
    return [b.warning() for b in bus_budgets(instances) if b.over_subscribed]
