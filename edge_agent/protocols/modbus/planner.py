"""Merge a profile's points into as few Modbus read requests as the protocol allows.

Points of one register table are sorted by address and packed greedily into a request while
the request stays within the per-read limit (125 registers for FC3/FC4, 2000 bits for FC1/FC2,
or the profile's lower limit) and the unused registers between two points stay within
`max_gap_registers`. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.schema import ModbusTcpProtocol, Point, RegisterType

_BIT_TABLES = {RegisterType.coil, RegisterType.discrete_input}


@dataclass(frozen=True)
class ReadRequest:
    """One read of `count` registers (or bits) of `table` from `start`, and the points in it."""

    table: RegisterType
    start: int
    count: int
    points: tuple[Point, ...]


def plan_reads(points: tuple[Point, ...] | list[Point],
               protocol: ModbusTcpProtocol) -> list[ReadRequest]:
    """Group points into read requests, in table order (coil, discrete, holding, input)."""
    requests: list[ReadRequest] = []
    for table in RegisterType:
        in_table = sorted((p for p in points if p.register_type == table),
                          key=lambda p: (p.address, p.words))
        limit = (protocol.max_bits_per_read if table in _BIT_TABLES
                 else protocol.max_registers_per_read)
        gap = 0 if table in _BIT_TABLES else protocol.max_gap_registers
        requests.extend(_pack(table, in_table, limit, gap))
    return requests


def _pack(table: RegisterType, points: list[Point], limit: int, gap: int) -> list[ReadRequest]:
    requests: list[ReadRequest] = []
    group: list[Point] = []
    start = end = 0  # end is exclusive
    for point in points:
        point_end = point.address + point.words
        fits = (group and point.address - end <= gap
                and max(end, point_end) - start <= limit)
        if fits:
            group.append(point)
            end = max(end, point_end)
            continue
        if group:
            requests.append(ReadRequest(table, start, end - start, tuple(group)))
        group, start, end = [point], point.address, point_end
    if group:
        requests.append(ReadRequest(table, start, end - start, tuple(group)))
    return requests
