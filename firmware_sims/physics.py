"""Shapes the device models share: time of day, daily patterns, correlated noise, ramps.

Pure functions of their arguments, except `Ar1Noise`, which draws from the numpy Generator it
is handed (so a seeded model is reproducible).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from firmware_sims.clock import DISTRICT_TZ


def local_hour(now: datetime) -> float:
    """Hour of the day in district time, 0 <= h < 24 (fractional)."""
    local = now.astimezone(DISTRICT_TZ)
    return local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600


def hours_apart(a: float, b: float) -> float:
    """Shortest distance between two hours of the day, across midnight (0..12)."""
    d = abs(a - b) % 24
    return min(d, 24 - d)


def bump(hour: float, center: float, width_h: float) -> float:
    """A daily Gaussian bump: 1 at `center`, ~0.61 at `center ± width_h`."""
    d = hours_apart(hour, center)
    return math.exp(-0.5 * (d / width_h) ** 2)


def diurnal(hour: float, low: float, high: float, min_hour: float = 6.0,
            max_hour: float = 14.0) -> float:
    """Daily curve: `low` at `min_hour`, `high` at `max_hour`, half-cosine in between."""
    rise = (max_hour - min_hour) % 24
    if rise == 0:
        raise ValueError("min_hour and max_hour must differ")
    since_min = (hour - min_hour) % 24
    phase = since_min / rise if since_min <= rise else 1 + (since_min - rise) / (24 - rise)
    return low + (high - low) * (1 - math.cos(math.pi * phase)) / 2


def ramp(current: float, target: float, rate_per_s: float, dt_s: float) -> float:
    """Move `current` towards `target` by at most rate * dt."""
    step = rate_per_s * dt_s
    if abs(target - current) <= step:
        return target
    return current + math.copysign(step, target - current)


class Ar1Noise:
    """Mean-reverting (Ornstein-Uhlenbeck) noise: std `sigma`, correlation time `tau_s`.

    Exact for any step size, so a model stepped once a minute or once a second has the same
    statistics.
    """

    def __init__(self, rng: np.random.Generator, sigma: float, tau_s: float) -> None:
        self.rng = rng
        self.sigma = sigma
        self.tau_s = tau_s
        self.value = 0.0

    def step(self, dt_s: float) -> float:
        if dt_s > 0:
            a = math.exp(-dt_s / self.tau_s)
            self.value = a * self.value + self.sigma * math.sqrt(1 - a * a) * float(
                self.rng.standard_normal())
        return self.value


def clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))
