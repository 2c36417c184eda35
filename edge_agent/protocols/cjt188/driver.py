"""CJ/T 188 driver: one meter on a shared bus -> its 901F metering data -> raw values by
point name. Drivers never scale (edge_agent/scaling.py does)."""

from __future__ import annotations

from device_profiles.schema import Cjt188Protocol, Profile
from edge_agent.errors import DeviceException
from edge_agent.protocols.base import Raw
from edge_agent.protocols.cjt188.codec import (
    BROADCAST,
    Cjt188Error,
    format_address,
    read_data_request,
)
from edge_agent.protocols.cjt188.metering import decode_metering, error_status, metering_fields
from edge_agent.protocols.cjt188.transport import Cjt188Bus


class Cjt188Driver:
    """Reads one meter (`address` as sent, A0 first; BROADCAST: the only meter on the port)."""

    def __init__(self, profile: Profile, bus: Cjt188Bus, address: bytes,
                 clock_utc_offset_h: float = 8.0) -> None:
        assert isinstance(profile.protocol, Cjt188Protocol)
        self.protocol = profile.protocol
        self.bus = bus
        self.address = address
        self.clock_utc_offset_h = clock_utc_offset_h
        self.points = {p.name: p.field for p in profile.points if p.field is not None}

    @property
    def name(self) -> str:
        label = "broadcast" if self.address == BROADCAST else format_address(self.address)
        return f"{self.bus.settings.port} meter {label}"

    async def read(self) -> dict[str, Raw]:
        p = self.protocol
        request = read_data_request(self.address, p.meter_type, self.bus.next_ser(),
                                    swap_di=p.swap_di)
        frame = await self.bus.exchange(request, p.timeout_s, p.preamble_bytes, p.check_ser)
        if frame.is_error:
            status = error_status(frame)
            code = status.raw if status is not None else 0
            raise DeviceException(f"{self.name}: error answer, ST {code:04X}", code)
        try:
            data = decode_metering(frame)
        except Cjt188Error as err:
            self.bus.rejections.count(err.reason, f"{self.name}: {err}")
            raise
        fields = metering_fields(data, self.clock_utc_offset_h)
        return {name: fields[field] for name, field in self.points.items() if field in fields}
