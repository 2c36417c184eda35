"""Which gateways and devices are online, from status messages and reading arrival.

A device is online when a reading arrived within `offline_after_intervals` of its poll interval
and its gateway does not report it unreachable. Thread-safe: updated from the MQTT thread, read
by the metrics scrape.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from cloud_broker.registry.devices import DeviceCatalogue


@dataclass(frozen=True)
class PresenceSnapshot:
    gateways_online: int
    known: dict[str, int]
    online: dict[str, int]
    unreachable: dict[str, int]


class Presence:
    def __init__(self, catalogue: DeviceCatalogue, offline_after_intervals: float) -> None:
        self.catalogue = catalogue
        self.offline_after_intervals = offline_after_intervals
        self._lock = threading.Lock()
        self._gateways: dict[str, bool] = {}
        self._last_seen: dict[str, float] = {}
        self._unreachable: set[str] = set()

    def gateway_status(self, gateway: str, online: bool) -> None:
        with self._lock:
            self._gateways[gateway] = online

    def device_status(self, device: str, reachable: bool) -> None:
        with self._lock:
            if reachable:
                self._unreachable.discard(device)
            else:
                self._unreachable.add(device)

    def seen(self, device: str, at: float | None = None) -> None:
        with self._lock:
            self._last_seen[device] = time.monotonic() if at is None else at

    def snapshot(self, now: float | None = None) -> PresenceSnapshot:
        now = time.monotonic() if now is None else now
        known: Counter[str] = Counter()
        online: Counter[str] = Counter()
        unreachable: Counter[str] = Counter()
        with self._lock:
            for device in self.catalogue.devices.values():
                known[device.domain] += 1
                if device.id in self._unreachable:
                    unreachable[device.domain] += 1
                    continue
                seen = self._last_seen.get(device.id)
                limit = device.interval_s * self.offline_after_intervals
                if seen is not None and now - seen <= limit:
                    online[device.domain] += 1
            gateways_online = sum(self._gateways.values())
        return PresenceSnapshot(gateways_online, dict(known), dict(online), dict(unreachable))
