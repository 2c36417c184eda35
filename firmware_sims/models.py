"""Registry: profile domain -> device model class.

A new device model of an existing domain needs only its profile (models read and write values
by point name; points the profile lacks are ignored). A new domain needs a module with a
DeviceModel subclass and one line in `MODELS`. Devices of a domain without physics (fire,
water) run as a `FixedModel`: their initial values, or forced ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import ClassVar

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


class FixedModel(DeviceModel):
    """A device without physics: it reports its initial values, or forced ones."""

    domain: ClassVar[Domain] = Domain.fire

    def __init__(self, profile: Profile, start: datetime, *, seed: int = 0,
                 initial: Mapping[str, Value] | None = None, physics: bool = False) -> None:
        super().__init__(profile, start, seed=seed, initial=initial, physics=physics)
        self._begin({})

    def _step(self, dt_s: float, now: datetime) -> dict[str, Value]:
        return {}


def model_or_fixed(profile: Profile, start: datetime, *, seed: int = 0,
                   initial: Mapping[str, Value] | None = None,
                   physics: bool = True) -> DeviceModel:
    """The model of `profile`'s domain (`build_model`), else a FixedModel."""
    if profile.domain in MODELS:
        return build_model(profile, start, seed=seed, initial=initial, physics=physics)
    return FixedModel(profile, start, seed=seed, initial=initial)
