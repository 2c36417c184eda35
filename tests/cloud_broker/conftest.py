"""Small overridable fixtures for the cloud's pure parts."""

from __future__ import annotations

import pytest

from cloud_broker.config import DeviceEntry
from cloud_broker.registry.devices import DeviceCatalogue
from device_profiles.schema import load_profiles


@pytest.fixture
def catalogue() -> DeviceCatalogue:
    entries = [
        DeviceEntry(id="ps-01", gateway="gw-pump-01", profile="dc-pumpstation-v1",
                    name="1号扬水站"),
        DeviceEntry(id="pole-001", gateway="gw-a", profile="dc-smartpole-v1", name="东昌路1号灯杆"),
    ]
    return DeviceCatalogue.from_entries(entries, load_profiles())
