"""Smart street-light pole: lamp schedule and power, environment sensor head, tilt, button.

    lamp        on from dusk (~17:30 district time, ± a few minutes per pole) to dawn (~06:45);
                dimming 100 % before midnight, 50 % after; off by day. A Modbus write to
                lamp_on / dimming becomes the setting until the client writes again.
    power       ~150 W * dimming when lit (constant-power LED driver), ~2 W standby;
                voltage 220 V ± a few (dipping with the evening load); current = power / voltage;
                energy (kWh) accumulates
    air         PM2.5 30-110 µg/m³ with morning (08:00) and evening (19:30) peaks, day-to-day
                drift and noise; PM10 1.5-1.8 x PM2.5
    weather     temperature follows the month's mean daily range (November ~4-14 °C), coolest
                at 06:00, warmest at 14:00; humidity moves inversely (~40-85 %RH)
    sound       45-68 dB(A): quiet nights, busy days, rush-hour bumps
    tilt        a per-pole lean of 0.28-0.42° with ±0.08° jitter; set_state("tilt", deg)
                leans it (e.g. hit by a vehicle)
    button      emergency_button false; set_state("emergency_button", true) presses it
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import ClassVar

from device_profiles.schema import Domain, Profile
from firmware_sims.clock import DISTRICT_TZ
from firmware_sims.device import DeviceModel, Value
from firmware_sims.physics import Ar1Noise, bump, clip, diurnal, local_hour

DUSK_H = 17.5
DAWN_H = 6.75
LAMP_RATED_W = 150.0
STANDBY_W = 2.0
NOMINAL_V = 220.0
TILT_JITTER_DEG = 0.08

MONTHLY_TEMPERATURE_C: tuple[tuple[float, float], ...] = (
    (-5, 4), (-2, 8), (4, 15), (10, 22), (16, 27), (21, 32),
    (24, 32), (23, 31), (17, 27), (10, 21), (4, 14), (-3, 6),
)
"""Mean daily (low, high) °C by month for the district (North China plain)."""


class SmartPole(DeviceModel):
    """Model of profile domain `smart_pole` (see the module docstring for the physics)."""

    domain: ClassVar[Domain] = Domain.smart_pole
    state_limits: ClassVar[Mapping[str, tuple[float, float]]] = MappingProxyType({
        "energy": (0.0, 4e7), "tilt": (0.0, 90.0)})

    def __init__(self, profile: Profile, start: datetime, *, seed: int = 0,
                 initial: Mapping[str, Value] | None = None, physics: bool = True) -> None:
        super().__init__(profile, start, seed=seed, initial=initial, physics=physics)
        rng = self.rng
        self._dusk_h = DUSK_H + float(rng.uniform(-0.1, 0.1))
        self._dawn_h = DAWN_H + float(rng.uniform(-0.1, 0.1))
        self._temperature_bias = float(rng.uniform(-0.5, 0.5))
        self._voltage_noise = Ar1Noise(rng, 0.8, 60.0)
        self._power_noise = Ar1Noise(rng, 0.4, 30.0)
        self._pm_day = Ar1Noise(rng, 0.06, 6 * 3600.0)
        self._pm_fast = Ar1Noise(rng, 3.0, 600.0)
        self._pm_ratio = Ar1Noise(rng, 0.05, 2 * 3600.0)
        self._temperature_noise = Ar1Noise(rng, 0.4, 3600.0)
        self._humidity_noise = Ar1Noise(rng, 3.0, 3600.0)
        self._sound_noise = Ar1Noise(rng, 1.5, 300.0)
        self._tilt_noise = Ar1Noise(rng, 0.03, 60.0)
        self._begin({"energy": 0.0, "emergency_button": False,
                     "tilt": round(float(rng.uniform(0.28, 0.42)), 3)})

    def schedule(self, now: datetime) -> tuple[bool, int]:
        """(lamp on, dimming %) by the pole's own timetable, ignoring client writes."""
        hour = local_hour(now)
        if hour >= self._dusk_h:
            return True, 100
        if hour < self._dawn_h:
            return True, 50
        return False, 0

    def _lamp(self, now: datetime) -> tuple[bool, int]:
        """The effective (lamp on, dimming %): client writes win over the timetable."""
        scheduled_on, scheduled_dim = self.schedule(now)
        written_on, written_dim = self.commanded("lamp_on"), self.commanded("dimming")
        lamp = scheduled_on if written_on is None else bool(written_on)
        if written_dim is not None:
            return lamp, int(written_dim)
        if not lamp:
            return False, 0
        return True, scheduled_dim if scheduled_on else 100

    def _step(self, dt_s: float, now: datetime) -> dict[str, Value]:
        hour = local_hour(now)
        lamp, dim = self._lamp(now)
        voltage = clip(221.5 - 3.0 * bump(hour, 19.5, 2.5) + self._voltage_noise.step(dt_s),
                       214.0, 226.0)
        noise_w = self._power_noise.step(dt_s)
        if lamp and dim > 0:
            power = LAMP_RATED_W * min(dim, 100) / 100 + noise_w
        else:
            power = STANDBY_W + noise_w / 10
        self.state["energy"] = float(self.state["energy"]) + power * dt_s / 3.6e6
        out: dict[str, Value] = {
            "lamp_on": lamp, "dimming": dim, "voltage": voltage, "active_power": power,
            "current": power / voltage, "energy": self.state["energy"],
            "emergency_button": self.state["emergency_button"],
        }
        out.update(self._air(dt_s, hour))
        out.update(self._weather(dt_s, now, hour))
        tilt = float(self.state["tilt"])
        jitter = clip(self._tilt_noise.step(dt_s), -TILT_JITTER_DEG, TILT_JITTER_DEG)
        out["tilt"] = clip(tilt + jitter, 0.0, 90.0)
        return out

    def _air(self, dt_s: float, hour: float) -> dict[str, Value]:
        pattern = 30.0 + 55.0 * bump(hour, 8.0, 1.5) + 75.0 * bump(hour, 19.5, 2.0)
        day = clip(1 + self._pm_day.step(dt_s), 0.85, 1.15)
        pm25 = clip(pattern * day + clip(self._pm_fast.step(dt_s), -9.0, 9.0), 5.0, 500.0)
        ratio = clip(1.65 + self._pm_ratio.step(dt_s), 1.5, 1.8)
        return {"pm25": round(pm25), "pm10": round(pm25 * ratio)}

    def _weather(self, dt_s: float, now: datetime, hour: float) -> dict[str, Value]:
        low, high = MONTHLY_TEMPERATURE_C[now.astimezone(DISTRICT_TZ).month - 1]
        temperature = (diurnal(hour, low, high) + self._temperature_bias
                       + self._temperature_noise.step(dt_s))
        warmth = clip((temperature - low) / (high - low), 0.0, 1.0)
        humidity = clip(85.0 - 45.0 * warmth + self._humidity_noise.step(dt_s), 20.0, 98.0)
        daytime = bump(hour, 14.0, 5.0)
        rush = bump(hour, 8.0, 1.0) + bump(hour, 18.0, 1.2)
        sound = clip(47.0 + 15.0 * daytime + 3.0 * rush + self._sound_noise.step(dt_s),
                     44.0, 70.0)
        return {"temperature": temperature, "humidity": humidity, "noise": sound}
