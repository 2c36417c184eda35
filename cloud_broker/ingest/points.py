"""What lands in InfluxDB: measurements, tags and fields for readings, statuses and alarms.

    <domain>        tags device, gateway, profile[, site]   fields: one per point     (readings)
    alarms          tags device, gateway, domain, rule, severity, state (raised, acknowledged,
                    cleared)   fields alarm_id, title, value, threshold       (alarm transitions)
    gateway_status  tags gateway                 fields online (bool), state
    device_status   tags device, gateway         fields reachable (bool), reason
    buffer_status   tags gateway                 fields readings, bytes, dropped_total
    quarantined_readings  tags device, gateway, reason   fields reading_ts, values (JSON)
                    at arrival time: readings outside the timestamp window, kept for review

A reading's timestamp is the device read time, so a redelivered reading overwrites the same
point instead of adding one (idempotent writes).
"""

from __future__ import annotations

import json

from cloud_broker.ingest.decode import DecodedBatch
from cloud_broker.ingest.lineprotocol import format_line
from cloud_broker.rules.engine import AlarmEvent


def reading_lines(batch: DecodedBatch) -> list[str]:
    device = batch.device
    tags = {"device": device.id, "gateway": device.gateway, "profile": device.profile.id,
            "site": device.site or ""}
    return [format_line(device.domain, tags, r.values, r.ts) for r in batch.readings]


def alarm_line(event: AlarmEvent) -> str:
    tags = {"device": event.device, "gateway": event.gateway, "domain": event.domain,
            "rule": event.rule, "severity": event.severity, "state": event.state}
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
