"""Pure checks of registry entries: one rule per row of `DEVICE_RULES` / `GATEWAY_RULES`.

Every rule returns the problems it finds (empty: the entry passes); `check_device` and
`check_gateway` run every rule and return all problems, so a technician sees them at once.
Nothing here touches the database: the caller passes what the rules need in a `Context`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date

from pydantic import ValidationError

from cloud_broker.registry.store import Device, Gateway
from device_profiles.schema import ProfileSet
from edge_agent.protocols import protocol_plugin
from edge_agent.protocols.base import validate_params
from edge_agent.uplink.contract import ID_RE


@dataclass(frozen=True)
class BoundingBox:
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.lat_min <= lat <= self.lat_max and self.lon_min <= lon <= self.lon_max


# Dongchang district (东昌府区), Liaocheng, Shandong, with a margin: every gateway and device
# of the programme is inside it, so a swapped lat/lon or a typo'd degree is caught.
DISTRICT_BBOX = BoundingBox(lat_min=36.2, lat_max=36.7, lon_min=115.7, lon_max=116.3)
TCP_KEYS = ("host", "port", "unit")


@dataclass(frozen=True)
class Context:
    """What the rules look up: profiles, gateways' statuses by id, ids already taken."""

    profiles: ProfileSet
    gateways: Mapping[str, str] = field(default_factory=dict)
    taken_ids: Collection[str] = frozenset()
    bbox: BoundingBox = DISTRICT_BBOX


def _id_valid(entry: Device | Gateway, ctx: Context) -> list[str]:
    if ID_RE.match(entry.id):
        return []
    return [f"id {entry.id!r} is not valid (1-64 letters, digits, _ . -; starting with a "
            f"letter or digit)"]


def _id_unique(entry: Device | Gateway, ctx: Context) -> list[str]:
    return [f"id {entry.id!r} is already registered"] if entry.id in ctx.taken_ids else []


def _in_district(entry: Device | Gateway, ctx: Context) -> list[str]:
    if ctx.bbox.contains(entry.lat, entry.lon):
        return []
    b = ctx.bbox
    return [f"location {entry.lat}, {entry.lon} is outside the district (lat {b.lat_min}–"
            f"{b.lat_max}, lon {b.lon_min}–{b.lon_max})"]


def _profile_exists(device: Device, ctx: Context) -> list[str]:
    return [] if device.profile in ctx.profiles.profiles else [f"unknown profile "
                                                               f"{device.profile!r}"]


def _gateway_active(device: Device, ctx: Context) -> list[str]:
    status = ctx.gateways.get(device.gateway)
    if status is None:
        return [f"unknown gateway {device.gateway!r}"]
    return [] if status == "active" else [f"gateway {device.gateway!r} is {status}"]


def _install_date(device: Device, ctx: Context) -> list[str]:
    if device.install_date is None:
        return []
    try:
        date.fromisoformat(device.install_date)
    except ValueError:
        return [f"install_date {device.install_date!r} is not a date (YYYY-MM-DD)"]
    return []


def _transport_fits(device: Device, ctx: Context) -> list[str]:
    """modbus_tcp takes host/port/unit; every other protocol its plugin's `params_model`."""
    if device.profile not in ctx.profiles.profiles:
        return []  # reported by _profile_exists
    kind = ctx.profiles.get(device.profile).protocol.kind
    tcp = {"host": device.host, "port": device.port, "unit": device.unit}
    if kind == "modbus_tcp":
        problems = [f"modbus_tcp needs {k}" for k, v in tcp.items() if v is None]
        if device.port is not None and not 1 <= device.port <= 65535:
            problems.append(f"port {device.port} is not 1-65535")
        if device.unit is not None and not 0 <= device.unit <= 255:
            problems.append(f"unit {device.unit} is not 0-255")
        if device.params:
            problems.append("modbus_tcp takes host/port/unit, not params")
        return problems
    given = [k for k, v in tcp.items() if v is not None]
    if given:
        return [f"{kind} takes params, not {'/'.join(given)}"]
    try:
        validate_params(protocol_plugin(kind).params_model, device.params, f"device {device.id}")
    except ValidationError as err:
        return [f"{kind} params: {'.'.join(str(x) for x in e['loc']) or '(all)'}: {e['msg']}"
                for e in err.errors()]
    except (KeyError, ValueError) as err:
        return [str(err)]
    return []


def _site_given(gateway: Gateway, ctx: Context) -> list[str]:
    return [] if gateway.site.strip() and gateway.town.strip() else ["site and town are needed"]


DeviceRule = Callable[[Device, Context], list[str]]
GatewayRule = Callable[[Gateway, Context], list[str]]

DEVICE_RULES: dict[str, DeviceRule] = {
    "id_valid": _id_valid,
    "id_unique": _id_unique,
    "profile_exists": _profile_exists,
    "gateway_active": _gateway_active,
    "in_district": _in_district,
    "install_date": _install_date,
    "transport_fits": _transport_fits,
}
GATEWAY_RULES: dict[str, GatewayRule] = {
    "id_valid": _id_valid,
    "id_unique": _id_unique,
    "site_given": _site_given,
    "in_district": _in_district,
}


def check_device(device: Device, ctx: Context, skip: Collection[str] = ()) -> list[str]:
    """Every problem of a device entry; `skip` names rules not to run (e.g. id_unique on
    an update)."""
    return [p for name, rule in DEVICE_RULES.items() if name not in skip
            for p in rule(device, ctx)]


def check_gateway(gateway: Gateway, ctx: Context) -> list[str]:
    return [p for rule in GATEWAY_RULES.values() for p in rule(gateway, ctx)]
