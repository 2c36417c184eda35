"""Two-pump drainage station: a 60 m² sump, inflow by time of day plus rain, a level-driven PLC.

    inflow  = dry weather (90 m³/h at night, morning and evening peaks to ~240 m³/h) with slow
              noise, plus rain bursts (on average one a day and a half; 250-700 m³/h, decaying
              with a 40 min time constant); `set_state("rain_inflow", m³/h)` starts one now
    PLC     pump1 starts at level >= 3.0 m, pump2 at >= 3.8 m, both stop at <= 1.2 m;
            a pump whose fault bit is set (set_state("pump1_fault", true)) stops and stays off
    drives  frequency ramps 5 Hz/s to 50 Hz when running, to 0 when stopped
    pumps   350 m³/h each at 50 Hz (flow proportional to speed); motor current 40-48 A at full
            speed with noise, 0 when stopped; outlet pressure 0.30-0.38 MPa pumping, ~0.05 static
    sump    level += (inflow - outflow) * dt / area, kept within 0..5.5 m (5.5 m is the
            overflow sill); total_volume accumulates the pumped m³

The physics runs in sub-steps of at most 5 simulated seconds, so fast clocks stay accurate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import ClassVar

from device_profiles.schema import Domain, Profile
from firmware_sims.device import DeviceModel, Value
from firmware_sims.physics import Ar1Noise, bump, clip, local_hour, ramp

AREA_M2 = 60.0
LEVEL_MAX_M = 5.5
START_LEVELS_M = (3.0, 3.8)
STOP_LEVEL_M = 1.2
PUMP_RATED_M3H = 350.0
RATED_HZ = 50.0
RAMP_HZ_PER_S = 5.0
STATIC_PRESSURE_MPA = 0.05
MAX_SUBSTEP_S = 5.0
MAX_SUBSTEPS = 2000
RAIN_MEAN_INTERVAL_S = 36 * 3600.0
RAIN_DECAY_S = 40 * 60.0
PUMPS = (1, 2)


class PumpStation(DeviceModel):
    """Model of profile domain `pump_station` (see the module docstring for the physics)."""

    domain: ClassVar[Domain] = Domain.pump_station
    state_limits: ClassVar[Mapping[str, tuple[float, float]]] = MappingProxyType({
        "sump_level": (0.0, LEVEL_MAX_M), "total_volume": (0.0, 4e8),
        "rain_inflow": (0.0, 5000.0), "pump1_frequency": (0.0, RATED_HZ),
        "pump2_frequency": (0.0, RATED_HZ),
    })

    def __init__(self, profile: Profile, start: datetime, *, seed: int = 0,
                 initial: Mapping[str, Value] | None = None, physics: bool = True) -> None:
        super().__init__(profile, start, seed=seed, initial=initial, physics=physics)
        rng = self.rng
        self._nominal_a = [float(rng.uniform(42.5, 45.5)) for _ in PUMPS]
        self._current_noise = [Ar1Noise(rng, 0.7, 30.0) for _ in PUMPS]
        self._inflow_noise = Ar1Noise(rng, 0.12, 1800.0)
        self._pressure_noise = Ar1Noise(rng, 0.004, 20.0)
        self._flow_noise = Ar1Noise(rng, 0.004, 10.0)
        self._begin({
            "sump_level": round(float(rng.uniform(1.5, 2.8)), 3), "total_volume": 0.0,
            "pump1_running": False, "pump2_running": False,
            "pump1_frequency": 0.0, "pump2_frequency": 0.0,
            "pump1_fault": False, "pump2_fault": False, "fault_code": 0,
            "rain_inflow": 0.0,
        })

    def inflow_m3h(self, now: datetime) -> float:
        """Inflow into the sump now (dry weather with its noise, plus rain)."""
        hour = local_hour(now)
        dry = 90.0 + 110.0 * bump(hour, 8.0, 1.5) + 140.0 * bump(hour, 20.0, 2.0)
        return max(0.0, dry * (1 + self._inflow_noise.value)) + float(self.state["rain_inflow"])

    def _step(self, dt_s: float, now: datetime) -> dict[str, Value]:
        n = min(MAX_SUBSTEPS, max(1, math.ceil(dt_s / MAX_SUBSTEP_S)))
        h = dt_s / n
        outflow = 0.0
        for i in range(n):
            outflow = self._advance(h, now - timedelta(seconds=h * (n - 1 - i)))
        return self._readings(dt_s, outflow)

    def _advance(self, h: float, now: datetime) -> float:
        """One sub-step of h seconds; return the outflow (m³/h) during it."""
        s = self.state
        rain = float(s["rain_inflow"]) * math.exp(-h / RAIN_DECAY_S)
        if h > 0 and self.rng.random() < 1 - math.exp(-h / RAIN_MEAN_INTERVAL_S):
            rain += float(self.rng.uniform(250.0, 700.0))
        s["rain_inflow"] = rain
        self._inflow_noise.step(h)
        for k in PUMPS:
            target = RATED_HZ if s[f"pump{k}_running"] else 0.0
            s[f"pump{k}_frequency"] = ramp(float(s[f"pump{k}_frequency"]), target,
                                           RAMP_HZ_PER_S, h)
        outflow = sum(PUMP_RATED_M3H * float(s[f"pump{k}_frequency"]) / RATED_HZ for k in PUMPS)
        level = float(s["sump_level"]) + (self.inflow_m3h(now) - outflow) * h / 3600 / AREA_M2
        s["sump_level"] = clip(level, 0.0, LEVEL_MAX_M)
        s["total_volume"] = float(s["total_volume"]) + outflow * h / 3600
        self._control()
        return outflow

    def _control(self) -> None:
        """The station PLC: start on high level, stop both on low level, never run faulted."""
        s = self.state
        level = float(s["sump_level"])
        for k, start_at in zip(PUMPS, START_LEVELS_M, strict=True):
            if s[f"pump{k}_fault"] or level <= STOP_LEVEL_M:
                s[f"pump{k}_running"] = False
            elif level >= start_at:
                s[f"pump{k}_running"] = True

    def _readings(self, dt_s: float, outflow: float) -> dict[str, Value]:
        s = self.state
        out: dict[str, Value] = {name: s[name] for name in (
            "sump_level", "total_volume", "fault_code", "pump1_fault", "pump2_fault")}
        for k, nominal, noise in zip(PUMPS, self._nominal_a, self._current_noise, strict=True):
            running = bool(s[f"pump{k}_running"])
            speed = float(s[f"pump{k}_frequency"]) / RATED_HZ
            amps = (nominal + noise.step(dt_s)) * (0.3 + 0.7 * speed**2)
            out[f"pump{k}_running"] = running
            out[f"pump{k}_current"] = clip(amps, 0.0, 48.0) if running else 0.0
            jitter = abs(float(self.rng.normal(0, 0.01))) if speed > 0 else 0.0
            out[f"pump{k}_frequency"] = max(0.0, RATED_HZ * speed - jitter)
        self._flow_noise.step(dt_s)
        self._pressure_noise.step(dt_s)
        out["flow"] = max(0.0, outflow * (1 + self._flow_noise.value)) if outflow > 0 else 0.0
        out["outlet_pressure"] = self._pressure(outflow)
        return out

    def _pressure(self, outflow: float) -> float:
        s = self.state
        speed = max(float(s[f"pump{k}_frequency"]) for k in PUMPS) / RATED_HZ
        if outflow <= 0:
            return clip(STATIC_PRESSURE_MPA + self._pressure_noise.value / 2, 0.04, 0.06)
        head = STATIC_PRESSURE_MPA + speed**2 * (0.265 + 0.045 * outflow / (2 * PUMP_RATED_M3H))
        pressure = head + self._pressure_noise.value
        return clip(pressure, 0.30, 0.38) if speed >= 1.0 else clip(pressure, 0.04, 0.38)
