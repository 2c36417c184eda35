"""Simulated clock: real monotonic time * time_scale, counted from a simulated start."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

DISTRICT_TZ = timezone(timedelta(hours=8), "CST")
"""Local time of the district (China Standard Time, UTC+8, no daylight saving)."""


class SimClock:
    """`now()` = start + (monotonic() - monotonic at construction) * time_scale."""

    def __init__(self, start: datetime, time_scale: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.start = start
        self.time_scale = time_scale
        self._monotonic = monotonic
        self._anchor = monotonic()

    def now(self) -> datetime:
        """The current simulated time (tz-aware, in the start's zone)."""
        elapsed = (self._monotonic() - self._anchor) * self.time_scale
        return self.start + timedelta(seconds=elapsed)
