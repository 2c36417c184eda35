"""Modbus driver: profile points -> planned reads -> raw values by point name."""

from __future__ import annotations

from device_profiles.schema import ModbusTcpProtocol, Profile
from edge_agent.protocols.base import Raw
from edge_agent.protocols.modbus.codec import decode_point
from edge_agent.protocols.modbus.planner import ReadRequest, plan_reads
from edge_agent.protocols.modbus.transport import ModbusTcpTransport


class ModbusDriver:
    """Reads one unit id on a shared Modbus TCP transport."""

    def __init__(self, profile: Profile, transport: ModbusTcpTransport, unit: int) -> None:
        assert isinstance(profile.protocol, ModbusTcpProtocol)
        self.transport = transport
        self.unit = unit
        self.requests: list[ReadRequest] = plan_reads(profile.points, profile.protocol)

    async def read(self) -> dict[str, Raw]:
        raw: dict[str, Raw] = {}
        async with self.transport.lock:
            for request in self.requests:
                values = await self.transport.read(request.table, request.start, request.count,
                                                   self.unit)
                for point in request.points:
                    raw[point.name] = decode_point(point, request.start, values)
        return raw
