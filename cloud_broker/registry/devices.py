"""The devices the cloud knows: which gateway owns each and which profile it follows.

Built from the cloud config's `devices:` and, when `registry_path` is set, from the active
devices of the provisioning registry (`store.py`): a decommissioned device is unknown, a moved
device belongs to its new gateway only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import ValidationError

from cloud_broker.config import ConfigError, DeviceEntry, RuleOverride
from device_profiles.rules import AlarmRule
from device_profiles.schema import DataType, Profile, ProfileSet

if TYPE_CHECKING:
    from cloud_broker.registry.store import Registry


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
    rules: tuple[AlarmRule, ...] = ()
    town: str | None = None
    lat: float | None = None
    lon: float | None = None

    @property
    def domain(self) -> str:
        return str(self.profile.domain)


class DeviceCatalogue:
    """Lookup of known devices by id."""

    def __init__(self, devices: dict[str, KnownDevice]) -> None:
        self.devices = devices

    @classmethod
    def from_entries(cls, entries: tuple[DeviceEntry, ...] | list[DeviceEntry],
                     profiles: ProfileSet,
                     overrides: tuple[RuleOverride, ...] = ()) -> DeviceCatalogue:
        devices: dict[str, KnownDevice] = {}
        for entry in entries:
            if entry.id in devices:
                raise ConfigError(f"device {entry.id!r} is listed twice")
            try:
                profile = profiles.get(entry.profile)
            except KeyError as err:
                raise ConfigError(f"device {entry.id!r}: {err.args[0]}") from err
            kinds = {p.name: point_kind(profile, p.name) for p in profile.points}
            rules = effective_rules(profile, entry.id, entry.site, overrides)
            devices[entry.id] = KnownDevice(
                entry.id, entry.gateway, profile, entry.name or entry.id, entry.site,
                entry.interval_s or profile.poll_interval_s, kinds, rules, entry.town,
                entry.lat, entry.lon)
        catalogue = cls(devices)
        check_overrides(catalogue, overrides)
        return catalogue

    @classmethod
    def from_registry(cls, registry: Registry, profiles: ProfileSet,
                      overrides: tuple[RuleOverride, ...] = (),
                      entries: tuple[DeviceEntry, ...] = ()) -> DeviceCatalogue:
        """The registry's active devices (site and town = their gateway's, lat/lon their own)
        plus `entries` from the config; an id in both is a ConfigError."""
        gateways = {g.id: g for g in registry.list_gateways()}
        registered: list[DeviceEntry] = []
        try:
            for d in registry.list_devices(status="active"):
                gateway = gateways.get(d.gateway)
                registered.append(DeviceEntry(
                    id=d.id, gateway=d.gateway, profile=d.profile, name=d.name,
                    site=(gateway.site or None) if gateway else None,
                    town=(gateway.town or None) if gateway else None, lat=d.lat, lon=d.lon))
        except ValidationError as err:
            raise ConfigError(f"registry {registry.path}: {err}") from err
        return cls.from_entries((*entries, *registered), profiles, overrides)

    def get(self, device_id: str) -> KnownDevice | None:
        return self.devices.get(device_id)

    def __len__(self) -> int:
        return len(self.devices)


def effective_rules(profile: Profile, device: str, site: str | None,
                    overrides: tuple[RuleOverride, ...]) -> tuple[AlarmRule, ...]:
    """The profile's default rules with the matching overrides applied, in order."""
    rules: list[AlarmRule] = []
    for rule in profile.alarms:
        current: AlarmRule | None = rule
        for override in overrides:
            if current is None or override.rule != rule.id:
                continue
            if not override.matches(device, site, profile.id):
                continue
            current = _overridden(profile, device, current, override)
        if current is not None:
            rules.append(current)
    return tuple(rules)


def _overridden(profile: Profile, device: str, rule: AlarmRule,
                override: RuleOverride) -> AlarmRule | None:
    if not override.enabled:
        return None
    try:
        changed = type(rule).model_validate({**rule.model_dump(), **override.set})
        # the changed rule must still fit the profile (points exist, types fit)
        Profile.model_validate({**profile.model_dump(by_alias=True),
                                "alarms": [changed.model_dump()]})
    except ValidationError as err:
        raise ConfigError(f"rule override {rule.id} for {device}: {err}") from err
    return changed


def check_overrides(catalogue: DeviceCatalogue, overrides: tuple[RuleOverride, ...]) -> None:
    """Every override must apply to at least one device whose profile has that rule."""
    for override in overrides:
        if not any(override.matches(d.id, d.site, d.profile.id)
                   and override.rule in {r.id for r in d.profile.alarms}
                   for d in catalogue.devices.values()):
            raise ConfigError(f"rule override {override.rule!r} matches no device whose "
                              f"profile has that rule")
