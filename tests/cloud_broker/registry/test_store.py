"""Registry CRUD on a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloud_broker.registry.errors import AlreadyExists, NotFound
from cloud_broker.registry.store import Device, Gateway, Registry

Factory = Callable[..., Device]


def test_gateways_add_get_list_revoke(registry: Registry) -> None:
    gateway = registry.get_gateway("gw-a")
    assert (gateway.site, gateway.town, gateway.status) == ("东昌路", "古楼街道", "active")
    assert gateway.created_at and gateway.updated_at
    assert [g.id for g in registry.list_gateways()] == ["gw-a", "gw-b", "gw-old"]
    assert [g.id for g in registry.list_gateways(status="revoked")] == ["gw-old"]
    registry.set_gateway_password_hash("gw-a", "$7$101$x$y")
    assert registry.get_gateway("gw-a").password_hash == "$7$101$x$y"
    registry.revoke_gateway("gw-a")
    revoked = registry.get_gateway("gw-a")
    assert (revoked.status, revoked.password_hash) == ("revoked", None)


def test_gateway_id_taken_and_missing(registry: Registry) -> None:
    with pytest.raises(AlreadyExists):
        registry.add_gateway(Gateway("gw-a", "x", "y", 36.4, 116.0))
    with pytest.raises(NotFound):
        registry.get_gateway("gw-nope")
    with pytest.raises(NotFound):
        registry.revoke_gateway("gw-nope")


def test_devices_round_trip_transport(registry: Registry, pole: Factory,
                                      meter: Factory) -> None:
    registry.add_device(pole())
    registry.add_device(meter())
    assert registry.get_device("pole-001").transport() == {"host": "10.0.0.5", "port": 502,
                                                           "unit": 1}
    assert registry.get_device("wm-001").transport() == {
        "params": {"serial_port": "/dev/ttyUSB0", "address": "12345678901234"}}
    assert [d.id for d in registry.list_devices(gateway="gw-a")] == ["pole-001", "wm-001"]
    assert registry.device_ids() == {"pole-001", "wm-001"}


def test_update_move_decommission(registry: Registry, pole: Factory) -> None:
    registry.add_device(pole())
    registry.update_device(pole(name="新名字", port=1502))
    device = registry.get_device("pole-001")
    assert (device.name, device.port, device.status) == ("新名字", 1502, "active")
    registry.move_device("pole-001", "gw-b")
    assert registry.get_device("pole-001").gateway == "gw-b"
    with pytest.raises(NotFound):
        registry.move_device("pole-001", "gw-nope")
    registry.decommission_device("pole-001")
    assert registry.get_device("pole-001").status == "decommissioned"
    assert registry.list_devices(status="active") == []
    assert len(registry.list_devices()) == 1


def test_add_devices_is_all_or_nothing(registry: Registry, pole: Factory) -> None:
    registry.add_device(pole())
    with pytest.raises(AlreadyExists):
        registry.add_devices([pole("pole-002"), pole("pole-001")])
    assert registry.device_ids() == {"pole-001"}


def test_reopened_file_keeps_entries(tmp_path: Path, pole: Factory) -> None:
    path = tmp_path / "sub" / "reg.sqlite"
    with Registry(path) as reg:
        reg.add_gateway(Gateway("gw-a", "s", "t", 36.4, 116.0))
        reg.add_device(pole())
    with Registry(path) as reg:
        assert reg.get_device("pole-001").gateway == "gw-a"
