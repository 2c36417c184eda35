"""Forwards stored readings to the broker: live ones at once, the backlog at a bounded rate.

    poll ─▶ store.append (committed) ─▶ connected and room in flight? ─▶ publish (live)
                                            └─ otherwise it stays in the store (backlog)
    PUBACK (paho thread) ─▶ acked deque ─▶ store.delete
    backlog ─▶ replayed oldest first, grouped by device (≤ replay_batch readings a message),
               at most replay_rate_per_s readings/s, while live readings keep flowing

Messages paho has accepted stay in its queue across reconnects and are re-sent by it, so a
reading is either in flight (tracked by message id) or in the store's backlog, never both.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass

from edge_agent.buffer.store import ReadingStore, StoredReading
from edge_agent.metrics import EdgeMetrics
from edge_agent.uplink.contract import Reading
from edge_agent.uplink.publisher import MqttUplink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForwarderSettings:
    replay_rate_per_s: float = 500.0
    replay_batch: int = 50
    max_in_flight: int = 2000
    status_interval_s: float = 10.0
    tick_s: float = 0.05


class Forwarder:
    def __init__(self, store: ReadingStore, uplink: MqttUplink, metrics: EdgeMetrics,
                 settings: ForwarderSettings) -> None:
        self.store = store
        self.uplink = uplink
        self.metrics = metrics
        self.settings = settings
        self._in_flight: dict[int, list[int]] = {}  # message id -> reading ids
        self._in_flight_ids: set[int] = set()
        self._acked: collections.deque[int] = collections.deque()
        self._replay_credit = 0.0
        self._last_status = 0.0
        self._status_dirty = True

    # paho's network thread
    def on_acked(self, mid: int) -> None:
        self._acked.append(mid)

    # event loop
    def submit(self, device: str, profile: str, reading: Reading) -> None:
        """Commit one reading, then publish it if the uplink can take it now."""
        (row_id,) = self.store.append([(device, profile, reading)])
        self.metrics.buffered.set(self.store.readings)
        if self.uplink.connected.is_set() and len(self._in_flight) < self.settings.max_in_flight:
            self._publish([StoredReading(row_id, device, profile, reading)], replay=False)

    def _publish(self, rows: list[StoredReading], replay: bool) -> None:
        first = rows[0]
        mid = self.uplink.publish_readings(first.device, first.profile,
                                           [r.reading for r in rows])
        if mid is None:
            return  # paho's queue is full: the readings stay in the backlog
        ids = [r.id for r in rows]
        self._in_flight[mid] = ids
        self._in_flight_ids.update(ids)
        if replay:
            self.metrics.replayed.inc(len(rows))

    def _process_acks(self) -> None:
        done: list[int] = []
        while self._acked:
            ids = self._in_flight.pop(self._acked.popleft(), None)
            if ids:
                done += ids
                self._in_flight_ids.difference_update(ids)
        if done:
            self.store.delete(done)
            self.metrics.buffered.set(self.store.readings)

    def _replay(self, dt: float) -> None:
        if not self.uplink.connected.is_set():
            self._replay_credit = 0.0
            return
        rate = self.settings.replay_rate_per_s
        self._replay_credit = min(self._replay_credit + rate * dt, max(rate, 1.0))
        room = self.settings.max_in_flight - len(self._in_flight)
        budget = int(min(self._replay_credit, room * self.settings.replay_batch))
        if budget <= 0:
            return
        rows = self.store.oldest(budget, self._in_flight_ids)
        for batch in _group_by_device(rows, self.settings.replay_batch):
            self._publish(batch, replay=True)
            self._replay_credit -= len(batch)

    def _enforce_bounds(self) -> None:
        dropped = self.store.enforce_bounds(self._in_flight_ids)
        for reason, count in dropped.items():
            if count:
                self.metrics.buffer_dropped(reason=reason).inc(count)
                log.warning("buffer bound (%s) hit: dropped the %d oldest readings", reason, count)
                self._status_dirty = True

    def _report(self, now: float) -> None:
        if not self._status_dirty and now - self._last_status < self.settings.status_interval_s:
            return
        if now - self._last_status < 1.0:  # at most one status a second
            return
        stats = self.store.stats()
        self.uplink.publish_buffer_status(stats.readings, stats.bytes, stats.oldest_ts,
                                          self.store.dropped_totals())
        self._last_status, self._status_dirty = now, False

    def step(self, dt: float) -> None:
        """One round: acks, bounds, replay, status."""
        self._process_acks()
        self._enforce_bounds()
        self._replay(dt)
        stats = self.store.stats()
        self.metrics.buffered.set(stats.readings)
        self.metrics.buffer_bytes.set(stats.bytes)
        self.metrics.in_flight.set(len(self._in_flight))
        self.metrics.readings_recorded.set(self.store.readings_recorded())
        if self.uplink.connected.is_set():
            self._report(time.monotonic())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.settings.tick_s)
            now = loop.time()
            self.step(now - last)
            last = now

    async def drain(self, timeout_s: float) -> None:
        """Wait (bounded) for in-flight messages to be acknowledged, e.g. before exiting."""
        deadline = time.monotonic() + timeout_s
        while self._in_flight and time.monotonic() < deadline and self.uplink.connected.is_set():
            self._process_acks()
            await asyncio.sleep(0.02)
        self._process_acks()


def _group_by_device(rows: list[StoredReading], limit: int) -> list[list[StoredReading]]:
    """Consecutive batches of one device's readings, keeping the overall oldest-first order."""
    groups: dict[tuple[str, str], list[StoredReading]] = {}
    order: list[list[StoredReading]] = []
    for row in rows:
        key = (row.device, row.profile)
        group = groups.get(key)
        if group is None or len(group) >= limit:
            group = groups[key] = []
            order.append(group)
        group.append(row)
    return order
