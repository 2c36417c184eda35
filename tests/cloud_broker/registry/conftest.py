"""A registry in a temp file with two active gateways and one revoked; overridable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloud_broker.registry.store import Device, Gateway, Registry
from device_profiles.schema import ProfileSet, load_profiles


@pytest.fixture(scope="session")
def profiles() -> ProfileSet:
    return load_profiles()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "registry.sqlite") as reg:
        reg.add_gateway(Gateway("gw-a", "东昌路", "古楼街道", 36.45, 115.98))
        reg.add_gateway(Gateway("gw-b", "柳园路", "柳园街道", 36.47, 116.0))
        reg.add_gateway(Gateway("gw-old", "旧站", "古楼街道", 36.44, 115.97))
        reg.revoke_gateway("gw-old")
        yield reg


def _pole(device_id: str = "pole-001", **changes: object) -> Device:
    """A valid modbus_tcp device on gw-a; `changes` override fields."""
    fields: dict[str, object] = {"id": device_id, "name": "东昌路1号灯杆",
                                 "profile": "dc-smartpole-v1", "gateway": "gw-a", "lat": 36.451,
                                 "lon": 115.981, "host": "10.0.0.5", "port": 502, "unit": 1,
                                 "install_date": "2025-03-01"}
    fields.update(changes)
    return Device(**fields)  # type: ignore[arg-type]


def _meter(device_id: str = "wm-001", **changes: object) -> Device:
    """A valid CJ/T 188 water meter on gw-a."""
    fields: dict[str, object] = {"id": device_id, "name": "1号水表",
                                 "profile": "dc-watermeter-cjt188-v1", "gateway": "gw-a",
                                 "lat": 36.452, "lon": 115.982,
                                 "params": {"serial_port": "/dev/ttyUSB0",
                                            "address": "12345678901234"}}
    fields.update(changes)
    return Device(**fields)  # type: ignore[arg-type]


DeviceFactory = Callable[..., Device]


@pytest.fixture
def pole() -> DeviceFactory:
    """`pole(id="pole-001", **changes)`: a valid modbus_tcp smart pole on gw-a."""
    return _pole


@pytest.fixture
def meter() -> DeviceFactory:
    """`meter(id="wm-001", **changes)`: a valid CJ/T 188 water meter on gw-a."""
    return _meter
