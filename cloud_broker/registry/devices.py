"""The devices the cloud knows: which gateway owns each and which profile it follows.

Built from the cloud config today; the provisioning registry (SQLite) will feed the same
object later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cloud_broker.config import ConfigError, DeviceEntry
from device_profiles.schema import DataType, Profile, ProfileSet


def point_kind(profile: Profile, name: str) -> str:
    """How the ingest stores a point: "bool", "int" or "float" (one InfluxDB type forever)."""
    point = profile.point(name)
    if point.type == DataType.bool:
        return "bool"
    return "int" if point.is_integer else "float"


@dataclass(frozen=True)
class KnownDevice:
    id: str
    gateway: str
    profile: Profile
    name: str
    site: str | None
    interval_s: float
    point_kinds: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def domain(self) -> str:
        return str(self.profile.domain)


class DeviceCatalogue:
    """Lookup of known devices by id."""

    def __init__(self, devices: dict[str, KnownDevice]) -> None:
        self.devices = devices

    @classmethod
    def from_entries(cls, entries: tuple[DeviceEntry, ...] | list[DeviceEntry],
                     profiles: ProfileSet) -> DeviceCatalogue:
        devices: dict[str, KnownDevice] = {}
        for entry in entries:
            if entry.id in devices:
                raise ConfigError(f"device {entry.id!r} is listed twice")
            try:
                profile = profiles.get(entry.profile)
            except KeyError as err:
                raise ConfigError(f"device {entry.id!r}: {err.args[0]}") from err
            kinds = {p.name: point_kind(profile, p.name) for p in profile.points}
            devices[entry.id] = KnownDevice(
                entry.id, entry.gateway, profile, entry.name or entry.id, entry.site,
                entry.interval_s or profile.poll_interval_s, kinds)
        return cls(devices)

    def get(self, device_id: str) -> KnownDevice | None:
        return self.devices.get(device_id)

    def __len__(self) -> int:
        return len(self.devices)
