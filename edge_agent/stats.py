"""Totals since the agent started, published as `dc.gateway-stats/1` (docs/architecture.md).

The Prometheus counters are per device and protocol and live only in this process's registry;
the cloud needs them per gateway, so the metrics code adds every poll result and every rejected
frame here too, and the uplink publishes a snapshot every `stats_interval_s` and on (re)connect.
Totals (not deltas): a lost or repeated message loses or doubles nothing.
"""

from __future__ import annotations

import collections
import threading


class Totals:
    """Counts by key; thread-safe (the uplink snapshots it from paho's network thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[key] += amount

    def snapshot(self) -> dict[str, int]:
        """The totals now, keys sorted (a stable payload)."""
        with self._lock:
            return dict(sorted(self._counts.items()))


def rejected_key(protocol: str, reason: str) -> str:
    """The `rejected` key of dc.gateway-stats/1: `protocol:reason`, e.g. `gbt26875:bad_checksum`."""
    return f"{protocol}:{reason}"
