"""The ingest's catalogue from the registry: decommissioned and moved devices are refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud_broker.app import build_ingest
from cloud_broker.config import CloudConfig, ConfigError, DeviceEntry, load_cloud_config
from cloud_broker.ingest.decode import Rejected, decode_readings
from cloud_broker.metrics import CloudMetrics
from cloud_broker.registry.devices import DeviceCatalogue
from cloud_broker.registry.store import Device, Registry
from device_profiles.schema import ProfileSet
from edge_agent.uplink.contract import Reading, encode_readings, parse_gateway_topic

NOW = 1_764_000_000_000
Factory = Callable[..., Device]


def _decode(catalogue: DeviceCatalogue, gateway: str, device: str = "pole-001") -> None:
    ref = parse_gateway_topic(f"dc/v1/gw/{gateway}/readings/{device}")
    assert ref is not None
    payload = encode_readings(gateway, device, "dc-smartpole-v1",
                              [Reading(NOW, {"lamp_on": True})])
    decode_readings(ref, payload, catalogue, NOW, max_bytes=4096)


def test_active_devices_are_known_with_their_gateway_site(
        registry: Registry, profiles: ProfileSet, pole: Factory) -> None:
    registry.add_device(pole())
    registry.add_device(pole("pole-002"))
    registry.decommission_device("pole-002")
    catalogue = DeviceCatalogue.from_registry(registry, profiles)
    known = catalogue.get("pole-001")
    assert known is not None and (known.gateway, known.site, known.name) == (
        "gw-a", "东昌路", "东昌路1号灯杆")
    assert catalogue.get("pole-002") is None


def test_decommissioned_and_moved_devices_are_rejected(
        registry: Registry, profiles: ProfileSet, pole: Factory) -> None:
    registry.add_device(pole())
    _decode(DeviceCatalogue.from_registry(registry, profiles), "gw-a")
    registry.move_device("pole-001", "gw-b")
    moved = DeviceCatalogue.from_registry(registry, profiles)
    with pytest.raises(Rejected) as wrong:
        _decode(moved, "gw-a")
    assert wrong.value.reason == "wrong_gateway"
    _decode(moved, "gw-b")
    registry.decommission_device("pole-001")
    with pytest.raises(Rejected) as unknown:
        _decode(DeviceCatalogue.from_registry(registry, profiles), "gw-b")
    assert unknown.value.reason == "unknown_device"


def test_config_entries_add_to_the_registry(registry: Registry, profiles: ProfileSet,
                                            pole: Factory) -> None:
    registry.add_device(pole())
    extra = DeviceEntry(id="ps-01", gateway="gw-pump", profile="dc-pumpstation-v1")
    catalogue = DeviceCatalogue.from_registry(registry, profiles, entries=(extra,))
    assert len(catalogue) == 2
    with pytest.raises(ConfigError, match="listed twice"):
        DeviceCatalogue.from_registry(registry, profiles, entries=(
            DeviceEntry(id="pole-001", gateway="gw-a", profile="dc-smartpole-v1"),))


def test_cloud_config_registry_path_feeds_the_ingest(registry: Registry, pole: Factory,
                                                     tmp_path: Path) -> None:
    registry.add_device(pole())
    path = tmp_path / "cloud.yaml"
    path.write_text(json.dumps({"registry_path": registry.path.name,
                                "influx": {"create_database": False}}), encoding="utf-8")
    config = load_cloud_config(path)
    assert config.registry_path == registry.path
    service = build_ingest(config, CloudMetrics())
    assert service.catalogue.get("pole-001") is not None
    missing = CloudConfig(registry_path=tmp_path / "nope.sqlite")
    with pytest.raises(ConfigError, match="does not exist"):
        build_ingest(missing, CloudMetrics())
