"""Count every rejected frame by reason; log each reason at most once per interval.

A listener facing a radio network sees a steady trickle of foreign and broken frames (other
networks' devices, CRC errors, replays), so each one is counted in
`dciot_edge_frames_rejected{protocol, reason}` while the log says it once per `interval_s`
per reason, with how many were left out since.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from edge_agent.metrics import EdgeMetrics


class Rejections:
    """Counter plus throttled log for one listener."""

    def __init__(self, metrics: EdgeMetrics, protocol: str, logger: logging.Logger,
                 interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.protocol = protocol
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def reject(self, reason: str, detail: str) -> None:
        """Count one rejected frame and maybe log it."""
        self.metrics.frames_rejected(protocol=self.protocol, reason=reason).inc()
        now = self.clock()
        if now - self._last.get(reason, now - self.interval_s) < self.interval_s:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        left_out = self._suppressed.pop(reason, 0)
        suffix = f" ({left_out} more since the last report)" if left_out else ""
        self.logger.warning("%s frame rejected, %s: %s%s", self.protocol, reason, detail, suffix)
