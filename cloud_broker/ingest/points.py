"""What lands in InfluxDB: measurements, tags and fields (docs/architecture.md "InfluxDB schema").

    <domain>        tags device, gateway, profile, site, town   fields: one per point (readings)
    alarms          tags device, gateway, domain, town, site, rule, severity, state (raised,
                    acknowledged, cleared)   fields alarm_id, title, value, threshold
    state_changes   tags device, domain, town, site, profile, point   field value (new bool)
    gateway_status  tags gateway                 fields online (bool), state
    device_status   tags device, gateway         fields reachable (bool), reason
    buffer_status   tags gateway                 fields readings, bytes, dropped_total
    edge_counters   tags gateway, kind (poll, rejected), reason   field total
    quarantined_readings  tags device, gateway, reason   fields reading_ts, values (JSON)
                    at arrival time: readings outside the timestamp window, kept for review
    (device_health, gateway_health, alarm_summary, ingest_stats: health.py)

A device without a town or site is tagged `未分配` (unassigned) rather than left untagged, so
the dashboards' `=~ /^$town$/` filters still see it. A reading's timestamp is the device read
time, so a redelivered reading overwrites the same point instead of adding one.
"""

from __future__ import annotations

import json

from cloud_broker.ingest.decode import DecodedBatch
from cloud_broker.ingest.lineprotocol import format_line
from cloud_broker.registry.devices import KnownDevice
from cloud_broker.rules.engine import AlarmEvent

UNASSIGNED = "未分配"
"""Tag value of a town or site nobody assigned."""


def place_tags(device: KnownDevice) -> dict[str, str]:
    """domain, town, site: the dashboards' chained filters."""
    return {"domain": device.domain, "town": device.town or UNASSIGNED,
            "site": device.site or UNASSIGNED}


def reading_lines(batch: DecodedBatch) -> list[str]:
    device = batch.device
    tags = {"device": device.id, "gateway": device.gateway, "profile": device.profile.id,
            "site": device.site or UNASSIGNED, "town": device.town or UNASSIGNED}
    return [format_line(device.domain, tags, r.values, r.ts) for r in batch.readings]


def state_change_line(device: KnownDevice, point: str, value: bool, ts: int) -> str:
    tags = {"device": device.id, "profile": device.profile.id, "point": point,
            **place_tags(device)}
    return format_line("state_changes", tags, {"value": value}, ts)


def alarm_line(event: AlarmEvent, device: KnownDevice | None = None) -> str:
    """`device` gives the town (an event of a device no longer known is 未分配)."""
    tags = {"device": event.device, "gateway": event.gateway, "domain": event.domain,
            "town": (device.town if device else None) or UNASSIGNED,
            "site": event.site or UNASSIGNED, "rule": event.rule, "severity": event.severity,
            "state": event.state}
    fields = {"alarm_id": event.alarm_id, "title": event.title_zh, "value": event.value,
              "threshold": event.threshold}
    return format_line("alarms", tags, fields, event.ts)


def gateway_status_line(gateway: str, state: str, ts: int) -> str:
    return format_line("gateway_status", {"gateway": gateway},
                       {"online": state == "online", "state": state}, ts)


def device_status_line(gateway: str, device: str, state: str, reason: str, ts: int) -> str:
    return format_line("device_status", {"gateway": gateway, "device": device},
                       {"reachable": state == "online", "reason": reason}, ts)


def buffer_status_line(gateway: str, fields: dict[str, int], ts: int) -> str:
    return format_line("buffer_status", {"gateway": gateway}, fields, ts)


def edge_counter_lines(gateway: str, polls: dict[str, int], rejected: dict[str, int],
                       ts: int) -> list[str]:
    """One point per poll result and per reject reason (totals since the agent started)."""
    return [format_line("edge_counters", {"gateway": gateway, "kind": kind, "reason": reason},
                        {"total": total}, ts)
            for kind, counters in (("poll", polls), ("rejected", rejected))
            for reason, total in sorted(counters.items())]


def quarantine_lines(batch: DecodedBatch, arrival_ms: int) -> list[str]:
    """Out-of-window readings, each at arrival time (+ its index, so none overwrites another)."""
    device = batch.device
    return [
        format_line("quarantined_readings",
                    {"device": device.id, "gateway": device.gateway, "reason": q.reason},
                    {"reading_ts": q.ts, "values": json.dumps(q.values, separators=(",", ":"))},
                    arrival_ms + i)
        for i, q in enumerate(batch.quarantined)
    ]
