"""Credentials (shown once, stored hashed, hook called) and the rendered gateway config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from cloud_broker.registry import provisioning
from cloud_broker.registry.errors import InvalidEntry, RegistryError
from cloud_broker.registry.store import Device, Gateway, Registry
from cloud_broker.security.passwords import verify_password
from device_profiles.schema import ProfileSet
from edge_agent.config import load_gateway_config
from edge_agent.wiring import wire

Factory = Callable[..., Device]


def test_credentials_lifecycle_calls_the_hook(registry: Registry) -> None:
    calls: list[Registry] = []
    password = provisioning.add_gateway(
        registry, Gateway("gw-new", "东昌路", "古楼街道", 36.45, 115.98), calls.append)
    stored = registry.get_gateway("gw-new").password_hash
    assert stored is not None and password not in stored and verify_password(password, stored)
    new = provisioning.rotate_credentials(registry, "gw-new", calls.append)
    assert verify_password(new, registry.get_gateway("gw-new").password_hash or "")
    provisioning.revoke_gateway(registry, "gw-new", calls.append)
    assert registry.get_gateway("gw-new").password_hash is None
    assert calls == [registry] * 3


def test_invalid_gateway_is_not_added_and_hook_not_called(registry: Registry) -> None:
    calls: list[Registry] = []
    with pytest.raises(InvalidEntry, match="outside the district"):
        provisioning.add_gateway(registry, Gateway("gw-x", "s", "t", 0.0, 0.0), calls.append)
    assert calls == [] and "gw-x" not in {g.id for g in registry.list_gateways()}


def test_update_and_move_are_validated(registry: Registry, profiles: ProfileSet,
                                       pole: Factory) -> None:
    provisioning.add_device(registry, profiles, pole())
    with pytest.raises(InvalidEntry, match="not 0-255"):
        provisioning.update_device(registry, profiles, "pole-001", {"unit": 300})
    with pytest.raises(InvalidEntry, match="is revoked"):
        provisioning.move_device(registry, profiles, "pole-001", "gw-old")
    assert registry.get_device("pole-001").gateway == "gw-a"
    assert provisioning.move_device(registry, profiles, "pole-001", "gw-b").gateway == "gw-b"


def test_gateway_config_and_listeners_needed(registry: Registry, profiles: ProfileSet,
                                             pole: Factory, meter: Factory,
                                             tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no active devices"):
        provisioning.gateway_config(registry, "gw-a")
    with pytest.raises(RegistryError, match="is revoked"):
        provisioning.gateway_config(registry, "gw-old")
    provisioning.add_device(registry, profiles, pole())
    provisioning.add_device(registry, profiles, meter())
    smoke = Device("smoke-01", "烟感", "dc-lorawan-smoke-v1", "gw-b", 36.45, 115.98,
                   params={"dev_eui": "0011223344556677"})
    registry.add_device(smoke)  # params not validated here: only the kind matters below
    config = provisioning.gateway_config(registry, "gw-a")
    assert [d["id"] for d in config["devices"]] == ["pole-001", "wm-001"]
    assert provisioning.listeners_needed(config, profiles) == []
    config_b = provisioning.gateway_config(registry, "gw-b")
    assert provisioning.listeners_needed(config_b, profiles) == ["lorawan"]
    assert provisioning.default_listeners(config_b, profiles) == [
        {"kind": "semtech_udp", "host": "0.0.0.0", "port": 1700}]
    # with the default listener the generated config passes the agent's own wiring checks
    config_b["listeners"] = provisioning.default_listeners(config_b, profiles)
    path = tmp_path / "gw-b.yaml"
    path.write_text(yaml.safe_dump(config_b, allow_unicode=True), encoding="utf-8")
    gateway, loaded_profiles = load_gateway_config(path)
    assert len(wire(gateway, loaded_profiles).listeners) == 1
