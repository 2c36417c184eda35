"""Bool points that changed value since the device's previous reading (`state_changes`).

Kept in memory per device and point, so the first reading after start is not a change.
Readings older than the newest one already seen for the device (redeliveries, replays) are
skipped: comparing them with a newer value would invent a change. Not thread-safe: used from
the MQTT thread only.
"""

from __future__ import annotations

from cloud_broker.ingest import points
from cloud_broker.ingest.decode import DecodedBatch


class StateChanges:
    def __init__(self) -> None:
        self._last: dict[tuple[str, str], bool] = {}
        self._newest_ts: dict[str, int] = {}

    def lines(self, batch: DecodedBatch) -> list[str]:
        """`state_changes` lines for the batch's readings (in time order), at their read time."""
        device = batch.device
        bools = [name for name, kind in device.point_kinds.items() if kind == "bool"]
        if not bools:
            return []
        lines: list[str] = []
        for reading in sorted(batch.readings, key=lambda r: r.ts):
            if reading.ts < self._newest_ts.get(device.id, reading.ts):
                continue
            self._newest_ts[device.id] = reading.ts
            for name in bools:
                value = reading.values.get(name)
                if not isinstance(value, bool):
                    continue
                before = self._last.get((device.id, name))
                self._last[(device.id, name)] = value
                if before is not None and before != value:
                    lines.append(points.state_change_line(device, name, value, reading.ts))
        return lines
