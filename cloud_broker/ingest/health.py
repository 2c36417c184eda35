"""The health tick's points: device_health, gateway_health, alarm_summary, ingest_stats.

Written every `health_interval_s` at the tick's wall-clock time (docs/architecture.md "InfluxDB
schema"), so the dashboards show the state *now* without scanning raw readings:

    device_health   one per known device: online, status (0 正常, 1 告警, 2 离线),
                    active_alarms, last_seen (ms of the last reading's arrival, 0 = never),
                    silent_s (seconds since then; never seen: since the ingest started),
                    lat, lon (when known)
    gateway_health  one per gateway (the catalogue's and any that sent a status): online (last
                    status), last_seen (ms of its last message), backlog, dropped_total (its
                    last buffer report, 0 before one)
    alarm_summary   one per (domain, town, site, rule, severity) the known devices have: active
    ingest_stats    over the tick: messages/points/rejected per second, write ms mean/max,
                    pending messages, consumer lag

`TickStats` is filled by the ingest's threads and emptied by each tick.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from cloud_broker.ingest.lineprotocol import format_line
from cloud_broker.ingest.points import UNASSIGNED, place_tags
from cloud_broker.presence import Presence
from cloud_broker.registry.devices import DeviceCatalogue, KnownDevice
from cloud_broker.rules.engine import AlarmEvent

STATUS_OK, STATUS_ALARM, STATUS_OFFLINE = 0, 1, 2


@dataclass(frozen=True)
class TickTotals:
    elapsed_s: float
    messages: int
    points: int
    rejected: int
    writes: int
    write_s_total: float
    write_s_max: float
    lag_s: float


class TickStats:
    """What the ingest did since the last `take()`. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since = time.monotonic()
        self._messages = self._points = self._rejected = self._writes = 0
        self._write_total = self._write_max = 0.0
        self._lag_s = 0.0

    def message(self) -> None:
        with self._lock:
            self._messages += 1

    def rejected(self, count: int = 1) -> None:
        with self._lock:
            self._rejected += count

    def wrote(self, points: int, seconds: float, lag_s: float | None) -> None:
        """A successful write of `points` reading points; `lag_s`: its oldest reading's age."""
        with self._lock:
            self._points += points
            self._writes += 1
            self._write_total += seconds
            self._write_max = max(self._write_max, seconds)
            if lag_s is not None:
                self._lag_s = max(0.0, lag_s)

    def take(self) -> TickTotals:
        now = time.monotonic()
        with self._lock:
            totals = TickTotals(max(now - self._since, 1e-6), self._messages, self._points,
                                self._rejected, self._writes, self._write_total,
                                self._write_max, self._lag_s)
            self._since = now
            self._messages = self._points = self._rejected = self._writes = 0
            self._write_total = self._write_max = 0.0
        return totals


class HealthReporter:
    """Builds one tick's lines from the catalogue, presence and the active alarms."""

    def __init__(self, catalogue: DeviceCatalogue, presence: Presence,
                 stats: TickStats) -> None:
        self.catalogue = catalogue
        self.presence = presence
        self.stats = stats
        self._started = time.monotonic()

    def lines(self, active: dict[tuple[str, str], AlarmEvent], pending: int,
              now_ms: int | None = None) -> list[str]:
        now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        return [*self.device_lines(active, now_ms), *self.gateway_lines(now_ms),
                *alarm_summary_lines(self.catalogue, active, now_ms),
                ingest_stats_line(self.stats.take(), pending, now_ms)]

    def device_lines(self, active: dict[tuple[str, str], AlarmEvent], now_ms: int) -> list[str]:
        alarms = Counter(device for device, _rule in active)
        uptime_s = time.monotonic() - self._started
        lines: list[str] = []
        for device_id, seen in self.presence.devices().items():
            device = self.catalogue.devices[device_id]
            count = alarms.get(device_id, 0)
            status = (STATUS_OFFLINE if not seen.online
                      else STATUS_ALARM if count else STATUS_OK)
            silent = seen.silent_s if seen.silent_s is not None else uptime_s
            fields: dict[str, int | float] = {
                "online": int(seen.online), "status": status, "active_alarms": count,
                "last_seen": seen.last_seen_ms or 0, "silent_s": round(float(silent), 3)}
            if device.lat is not None and device.lon is not None:
                fields.update(lat=float(device.lat), lon=float(device.lon))
            tags = {"device": device.id, "gateway": device.gateway,
                    "profile": device.profile.id, **place_tags(device)}
            lines.append(format_line("device_health", tags, fields, now_ms))
        return lines

    def gateway_lines(self, now_ms: int) -> list[str]:
        places: dict[str, KnownDevice] = {}
        for device in sorted(self.catalogue.devices.values(), key=lambda d: d.id):
            places.setdefault(device.gateway, device)
        lines: list[str] = []
        for gateway, state in self.presence.gateways().items():
            device = places.get(gateway)
            tags = {"gateway": gateway,
                    "town": (device.town if device else None) or UNASSIGNED,
                    "site": (device.site if device else None) or UNASSIGNED}
            fields = {"online": int(state.online), "last_seen": state.last_seen_ms or 0,
                      "backlog": state.backlog, "dropped_total": state.dropped_total}
            lines.append(format_line("gateway_health", tags, fields, now_ms))
        return lines


def alarm_summary_lines(catalogue: DeviceCatalogue, active: dict[tuple[str, str], AlarmEvent],
                        now_ms: int) -> list[str]:
    """Active occurrences per (domain, town, site, rule, severity), zeros included."""
    def key(device: KnownDevice, rule: str, severity: str) -> tuple[str, ...]:
        place = place_tags(device)
        return place["domain"], place["town"], place["site"], rule, severity

    counts: Counter[tuple[str, ...]] = Counter()
    for device in catalogue.devices.values():
        for rule in device.rules:
            counts[key(device, rule.id, str(rule.severity))] += 0
    for device_id, rule_id in active:
        device = catalogue.get(device_id)
        rule = next((r for r in device.rules if r.id == rule_id), None) if device else None
        if device is not None and rule is not None:
            counts[key(device, rule.id, str(rule.severity))] += 1
    names = ("domain", "town", "site", "rule", "severity")
    return [format_line("alarm_summary", dict(zip(names, k, strict=True)), {"active": n}, now_ms)
            for k, n in sorted(counts.items())]


def ingest_stats_line(totals: TickTotals, pending: int, now_ms: int) -> str:
    elapsed = totals.elapsed_s
    mean_ms = totals.write_s_total / totals.writes * 1000 if totals.writes else 0.0
    fields = {"messages_per_s": round(totals.messages / elapsed, 3),
              "points_per_s": round(totals.points / elapsed, 3),
              "rejected_per_s": round(totals.rejected / elapsed, 3),
              "write_ms_mean": round(mean_ms, 3),
              "write_ms_max": round(totals.write_s_max * 1000, 3),
              "pending": pending, "lag_s": round(totals.lag_s, 3)}
    return format_line("ingest_stats", {}, fields, now_ms)
