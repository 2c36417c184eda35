"""Which gateways and devices are online, from status messages and reading arrival.

A device is online when a reading arrived within `offline_after_intervals` of its poll interval
and its gateway does not report it unreachable. A gateway is online when its last
`dc.gateway-status/1` said so. Besides the monotonic clock that decides "online", arrivals are
kept in wall-clock epoch ms for the health points (`last_seen`). Thread-safe: updated from the
MQTT thread, read by the metrics scrape and the health tick.
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


@dataclass(frozen=True)
class DevicePresence:
    online: bool
    last_seen_ms: int | None  # wall clock of the last reading's arrival; None: never
    silent_s: float | None  # seconds since then (monotonic); None: never


@dataclass(frozen=True)
class GatewayPresence:
    online: bool  # its last status said online
    last_seen_ms: int | None  # wall clock of the last message from it (any kind)
    backlog: int  # readings its last buffer report held (0: none yet)
    dropped_total: int


class Presence:
    def __init__(self, catalogue: DeviceCatalogue, offline_after_intervals: float) -> None:
        self.catalogue = catalogue
        self.offline_after_intervals = offline_after_intervals
        self._lock = threading.Lock()
        self._gateways: dict[str, bool] = {}
        self._last_seen: dict[str, float] = {}
        self._last_seen_ms: dict[str, int] = {}
        self._gateway_seen_ms: dict[str, int] = {}
        self._buffers: dict[str, tuple[int, int]] = {}
        self._unreachable: set[str] = set()

    def gateway_status(self, gateway: str, online: bool) -> None:
        with self._lock:
            self._gateways[gateway] = online

    def gateway_seen(self, gateway: str, at_ms: int | None = None) -> None:
        """A message arrived from the gateway (of any kind)."""
        with self._lock:
            self._gateway_seen_ms[gateway] = _now_ms() if at_ms is None else at_ms

    def gateway_buffer(self, gateway: str, readings: int, dropped_total: int) -> None:
        with self._lock:
            self._buffers[gateway] = (readings, dropped_total)

    def device_status(self, device: str, reachable: bool) -> None:
        with self._lock:
            if reachable:
                self._unreachable.discard(device)
            else:
                self._unreachable.add(device)

    def seen(self, device: str, at: float | None = None) -> None:
        with self._lock:
            self._last_seen[device] = time.monotonic() if at is None else at
            self._last_seen_ms[device] = _now_ms()

    def _online(self, device_id: str, interval_s: float, now: float) -> bool:
        if device_id in self._unreachable:
            return False
        seen = self._last_seen.get(device_id)
        return seen is not None and now - seen <= interval_s * self.offline_after_intervals

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
                elif self._online(device.id, device.interval_s, now):
                    online[device.domain] += 1
            gateways_online = sum(self._gateways.values())
        return PresenceSnapshot(gateways_online, dict(known), dict(online), dict(unreachable))

    def devices(self, now: float | None = None) -> dict[str, DevicePresence]:
        """Every known device's presence, by id."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return {d.id: DevicePresence(
                self._online(d.id, d.interval_s, now), self._last_seen_ms.get(d.id),
                now - self._last_seen[d.id] if d.id in self._last_seen else None)
                for d in self.catalogue.devices.values()}

    def gateways(self) -> dict[str, GatewayPresence]:
        """The catalogue's gateways and every gateway that sent a status, by id."""
        with self._lock:
            ids = {d.gateway for d in self.catalogue.devices.values()} | set(self._gateways)
            return {g: GatewayPresence(self._gateways.get(g, False),
                                       self._gateway_seen_ms.get(g),
                                       *self._buffers.get(g, (0, 0))) for g in sorted(ids)}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
