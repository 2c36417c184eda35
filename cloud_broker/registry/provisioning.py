"""What technicians do to the registry, validated: add gateways (with a broker password shown
once), rotate or revoke their credentials, add/update/move/decommission devices, and render a
gateway's edge-agent config.

Credentials: the plain password is returned to the caller exactly once and only its mosquitto
hash (`cloud_broker.security.passwords.hash_password`) is stored. After every change that
affects credentials, `on_credentials_changed` (if given) is called with the registry, so the
broker's password/ACL files can be regenerated (see `broker_files_hook`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cloud_broker.registry.errors import InvalidEntry, RegistryError
from cloud_broker.registry.store import Device, Gateway, Registry
from cloud_broker.registry.validation import Context, check_device, check_gateway
from cloud_broker.security.broker_files import BrokerFilesError, regenerate_from_registry
from cloud_broker.security.passwords import generate_password, hash_password
from cloud_broker.security.service_accounts import load_service_accounts
from device_profiles.schema import ProfileSet
from edge_agent.protocols import LISTENERS, listener_plugin, protocol_plugin

CredentialsHook = Callable[[Registry], None]
PASSWORD_ENV = "DCIOT_BROKER_PASSWORD"


def context(registry: Registry, profiles: ProfileSet) -> Context:
    """The validation context of the registry as it is now."""
    return Context(profiles=profiles,
                   gateways={g.id: g.status for g in registry.list_gateways()},
                   taken_ids=registry.device_ids())


def broker_files_hook(broker_dir: Path, service_accounts: Path) -> CredentialsHook:
    """The seam to the security module: rewrite the broker's password and ACL files in
    `broker_dir` from the registry's active gateways plus the service accounts (ingest, event
    centre, operators) kept in `service_accounts`; raises RegistryError if they cannot be.

    The file must exist: files written without the service accounts would lock the ingest out.
    Reloading mosquitto (SIGHUP, `reload_broker`) is left to whoever runs it.
    """
    def hook(registry: Registry) -> None:
        if not service_accounts.is_file():
            raise RegistryError(f"service-accounts file {service_accounts} does not exist: "
                                f"broker files without it would lock the ingest out")
        try:
            regenerate_from_registry(registry, broker_dir,
                                     load_service_accounts(service_accounts))
        except (BrokerFilesError, OSError) as err:
            raise RegistryError(f"broker files in {broker_dir} not regenerated: {err}") from err
    return hook


def _notify(registry: Registry, hook: CredentialsHook | None) -> None:
    if hook is not None:
        hook(registry)


def add_gateway(registry: Registry, gateway: Gateway,
                on_credentials_changed: CredentialsHook | None = None) -> str:
    """Register an active gateway with a fresh broker password; return the password (once)."""
    gw_ctx = Context(profiles=ProfileSet({}), taken_ids={g.id for g in registry.list_gateways()})
    problems = check_gateway(gateway, gw_ctx)
    if problems:
        raise InvalidEntry(f"gateway {gateway.id}", problems)
    password = generate_password()
    registry.add_gateway(replace(gateway, status="active", password_hash=hash_password(password)))
    _notify(registry, on_credentials_changed)
    return password


def rotate_credentials(registry: Registry, gateway_id: str,
                       on_credentials_changed: CredentialsHook | None = None) -> str:
    """Replace an active gateway's password hash; return the new password (once)."""
    gateway = registry.get_gateway(gateway_id)
    if gateway.status != "active":
        raise RegistryError(f"gateway {gateway_id!r} is {gateway.status}")
    password = generate_password()
    registry.set_gateway_password_hash(gateway_id, hash_password(password))
    _notify(registry, on_credentials_changed)
    return password


def revoke_gateway(registry: Registry, gateway_id: str,
                   on_credentials_changed: CredentialsHook | None = None) -> None:
    registry.revoke_gateway(gateway_id)
    _notify(registry, on_credentials_changed)


def add_device(registry: Registry, profiles: ProfileSet, device: Device) -> Device:
    problems = check_device(replace(device, status="active"), context(registry, profiles))
    if problems:
        raise InvalidEntry(f"device {device.id}", problems)
    return registry.add_device(replace(device, status="active"))


def update_device(registry: Registry, profiles: ProfileSet, device_id: str,
                  changes: dict[str, Any]) -> Device:
    """Change some fields of a device (not id, gateway or status: see move/decommission)."""
    current = registry.get_device(device_id)
    changed = replace(current, **changes)
    problems = check_device(changed, context(registry, profiles), skip={"id_unique"})
    if problems:
        raise InvalidEntry(f"device {device_id}", problems)
    return registry.update_device(changed)


def move_device(registry: Registry, profiles: ProfileSet, device_id: str,
                gateway_id: str) -> Device:
    """Give the device to another (active) gateway; readings from the old one are refused."""
    moved = replace(registry.get_device(device_id), gateway=gateway_id)
    problems = check_device(moved, context(registry, profiles), skip={"id_unique"})
    if problems:
        raise InvalidEntry(f"device {device_id}", problems)
    registry.move_device(device_id, gateway_id)
    return registry.get_device(device_id)


def gateway_config(registry: Registry, gateway_id: str, broker_host: str = "127.0.0.1",
                   broker_port: int = 1883) -> dict[str, Any]:
    """The edge agent's config (edge_agent.config.GatewayConfig) for one gateway: its active
    devices with their transport parameters; the password is read from DCIOT_BROKER_PASSWORD."""
    gateway = registry.get_gateway(gateway_id)
    if gateway.status != "active":
        raise RegistryError(f"gateway {gateway_id!r} is {gateway.status}")
    devices = registry.list_devices(gateway=gateway_id, status="active")
    if not devices:
        raise RegistryError(f"gateway {gateway_id!r} has no active devices")
    return {
        "gateway_id": gateway.id,
        "site": gateway.site,
        "broker": {"host": broker_host, "port": broker_port, "username": gateway.id,
                   "password_env": PASSWORD_ENV},
        "devices": [{"id": d.id, "name": d.name, "profile": d.profile, **d.transport()}
                    for d in devices],
    }


def listeners_needed(config: dict[str, Any], profiles: ProfileSet) -> list[str]:
    """Pushed protocols among a rendered config's devices: each needs a `listeners:` entry
    (host, port, keys), which the registry does not hold."""
    kinds = {profiles.get(d["profile"]).protocol.kind for d in config["devices"]}
    return sorted(k for k in kinds if protocol_plugin(k).create_driver is None)


def default_listeners(config: dict[str, Any], profiles: ProfileSet) -> list[dict[str, object]]:
    """A listener entry for each pushed protocol among the config's devices, from the first
    listener plugin serving it that has a default (the listening port is a site fact the
    registry does not hold: the technician checks it)."""
    entries: list[dict[str, object]] = []
    for kind in listeners_needed(config, profiles):
        for name in LISTENERS:
            plugin = listener_plugin(name)
            if kind in plugin.serves and plugin.default_entry is not None:
                entries.append(dict(plugin.default_entry))
                break
    return entries
