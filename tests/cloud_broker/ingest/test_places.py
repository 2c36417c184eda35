"""Places (town, lat/lon) reach the catalogue from the config, the registry and the demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud_broker.config import CloudConfig, DeviceEntry
from cloud_broker.registry.devices import DeviceCatalogue
from cloud_broker.registry.store import Device, Gateway, Registry
from dciot.demo import district
from device_profiles.schema import load_profiles


def test_registry_devices_get_their_gateways_town_and_their_own_place(tmp_path: Path) -> None:
    with Registry(tmp_path / "registry.sqlite") as registry:
        registry.add_gateway(Gateway("gw-a", "东昌路", "古楼街道", 36.45, 115.98))
        registry.add_device(Device("pole-001", "东昌路1号灯杆", "dc-smartpole-v1", "gw-a",
                                   36.4561, 115.9652, host="10.0.0.5", port=502, unit=1))
        catalogue = DeviceCatalogue.from_registry(registry, load_profiles(), entries=(
            DeviceEntry(id="pole-900", gateway="gw-x", profile="dc-smartpole-v1"),))
    pole = catalogue.get("pole-001")
    assert pole is not None
    assert (pole.site, pole.town, pole.lat, pole.lon) == ("东昌路", "古楼街道", 36.4561, 115.9652)
    bare = catalogue.get("pole-900")
    assert bare is not None and (bare.site, bare.town, bare.lat, bare.lon) == (None,) * 4


@pytest.mark.parametrize("place", [{"lat": 91.0}, {"lat": -90.5}, {"lon": 180.1}])
def test_places_out_of_range_are_refused(place: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        DeviceEntry(id="p", gateway="g", profile="dc-smartpole-v1", **place)  # type: ignore[arg-type]


def test_every_demo_device_has_a_town_and_a_distinct_place(tmp_path: Path) -> None:
    sites = [*district.plan_district(20, 2, list(range(40000, 40004))),
             district.plan_fire_site(40010, tmp_path, 2.0),
             district.plan_water_site(40011, tmp_path, 2.0)]
    ports = district.Ports(1, 2, 3, 4, [], 5, 6)
    config = CloudConfig.model_validate(district.cloud_config(sites, ports, "dciot", 1.0))
    assert config.health_interval_s == 2.0
    towns = {d.gateway: d.town for d in config.devices}
    assert towns["gw-dongchang-rd"] == "古楼街道" and towns["gw-liuyuan-rd"] == "柳园街道"
    assert towns["gw-fire-01"] == "古楼街道" and towns["gw-water-01"] == "柳园街道"
    assert all(town for town in towns.values())
    places = [(d.lat, d.lon) for d in config.devices]
    assert all(lat is not None and lon is not None and abs(lat - 36.45) < 0.05
               and abs(lon - 115.98) < 0.05 for lat, lon in places)
    assert len(set(places)) == len(places)
