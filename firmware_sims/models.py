"""Registry: profile domain -> device model class.

A new device model of an existing domain needs only its profile (models read and write values
by point name; points the profile lacks are ignored). A new domain needs a module with a
DeviceModel subclass and one line in `MODELS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from device_profiles.schema import Domain, Profile
from firmware_sims.device import DeviceModel, Value
from firmware_sims.pump_station import PumpStation
from firmware_sims.smart_pole import SmartPole

MODELS: Mapping[Domain, type[DeviceModel]] = MappingProxyType({
    Domain.pump_station: PumpStation,
    Domain.smart_pole: SmartPole,
})


def build_model(profile: Profile, start: datetime, *, seed: int = 0,
                initial: Mapping[str, Value] | None = None,
                physics: bool = True) -> DeviceModel:
    """The model of `profile`'s domain; KeyError when no model simulates that domain."""
    try:
        cls = MODELS[profile.domain]
    except KeyError:
        raise KeyError(f"no simulator for domain {profile.domain} (profile {profile.id}); "
                       f"simulated: {', '.join(sorted(MODELS))}") from None
    return cls(profile, start, seed=seed, initial=initial, physics=physics)
