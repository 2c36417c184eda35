"""Durable reading store (SQLite, WAL, synchronous=FULL): the edge agent's store-and-forward.

Every reading is committed here before it is published, and deleted only after the broker
acknowledged the message holding it, so it survives `kill -9` and a power cut. Row ids come
from AUTOINCREMENT and are never reused: `readings_recorded()` is the number of readings ever
taken. The store is bounded by total payload bytes and by age; when a bound is hit the oldest
readings that are not in flight are dropped, and the drops are counted in the file itself so
the total survives restarts. Used from one thread only (the agent's event loop).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from edge_agent.uplink.contract import Reading

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    profile TEXT NOT NULL,
    ts INTEGER NOT NULL,
    values_json TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class StoredReading:
    id: int
    device: str
    profile: str
    reading: Reading


@dataclass(frozen=True)
class StoreStats:
    readings: int
    bytes: int
    oldest_ts: int | None


class ReadingStore:
    def __init__(self, path: Path, max_bytes: int, max_age_s: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._db: sqlite3.Connection | None = None
        self._bytes = 0
        self._count = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        self._count, self._bytes = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM readings").fetchone()
        self._db = db

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "open() first"
        return self._db

    def append(self, items: list[tuple[str, str, Reading]]) -> list[int]:
        """Commit readings (device, profile, reading) in one transaction; return their ids."""
        ids: list[int] = []
        with self.db:
            self.db.execute("BEGIN")
            for device, profile, reading in items:
                values = json.dumps(reading.values, separators=(",", ":"), allow_nan=False)
                size = len(values) + len(device) + len(profile) + 16
                cursor = self.db.execute(
                    "INSERT INTO readings (device, profile, ts, values_json, size) "
                    "VALUES (?, ?, ?, ?, ?)", (device, profile, reading.ts, values, size))
                ids.append(int(cursor.lastrowid or 0))
                self._bytes += size
        self._count += len(ids)
        return ids

    def oldest(self, limit: int, exclude: set[int]) -> list[StoredReading]:
        """The oldest readings not in `exclude` (those in flight), oldest first."""
        rows = self.db.execute(
            "SELECT id, device, profile, ts, values_json FROM readings ORDER BY id LIMIT ?",
            (limit + len(exclude),)).fetchall()
        out = [StoredReading(i, d, p, Reading(ts, json.loads(v)))
               for i, d, p, ts, v in rows if i not in exclude]
        return out[:limit]

    def delete(self, ids: list[int]) -> None:
        """Forget acknowledged readings."""
        if not ids:
            return
        with self.db:
            self.db.execute("BEGIN")
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                removed = self.db.execute(
                    f"DELETE FROM readings WHERE id IN ({marks}) RETURNING size",
                    chunk).fetchall()
                self._bytes -= sum(r[0] for r in removed)
                self._count -= len(removed)

    def enforce_bounds(self, in_flight: set[int], now_ms: int | None = None) -> dict[str, int]:
        """Drop the oldest readings past the age bound, then past the size bound.

        Readings in flight are never dropped (they may already be delivered). Returns the
        number dropped by reason ("age", "size"); the totals are kept in the file.
        """
        now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        dropped = {"age": 0, "size": 0}
        cutoff = now_ms - int(self.max_age_s * 1000)
        with self.db:
            self.db.execute("BEGIN")
            for reason in ("age", "size"):
                while self._over(reason, cutoff):
                    victims = [r for r in self.db.execute(
                        "SELECT id, size, ts FROM readings ORDER BY id LIMIT ?",
                        (len(in_flight) + 256,)).fetchall() if r[0] not in in_flight]
                    chosen = self._choose(reason, victims, cutoff)
                    if not chosen:
                        break
                    marks = ",".join("?" * len(chosen))
                    self.db.execute(f"DELETE FROM readings WHERE id IN ({marks})",
                                    [r[0] for r in chosen])
                    self._bytes -= sum(r[1] for r in chosen)
                    self._count -= len(chosen)
                    dropped[reason] += len(chosen)
                if dropped[reason]:
                    self.db.execute(
                        "INSERT INTO counters VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                        (f"dropped_{reason}", dropped[reason]))
        return dropped

    def _over(self, reason: str, cutoff: int) -> bool:
        if reason == "size":
            return self._bytes > self.max_bytes
        row = self.db.execute("SELECT min(ts) FROM readings").fetchone()
        return row[0] is not None and row[0] < cutoff

    def _choose(self, reason: str, victims: list[tuple[int, int, int]],
                cutoff: int) -> list[tuple[int, int, int]]:
        if reason == "age":
            return [v for v in victims if v[2] < cutoff]
        chosen, excess = [], self._bytes - self.max_bytes
        for victim in victims:
            if excess <= 0:
                break
            chosen.append(victim)
            excess -= victim[1]
        return chosen

    def dropped_totals(self) -> dict[str, int]:
        rows = self.db.execute("SELECT name, value FROM counters WHERE name LIKE 'dropped_%'")
        totals = {"age": 0, "size": 0}
        totals.update({name.removeprefix("dropped_"): int(v) for name, v in rows})
        return totals

    def readings_recorded(self) -> int:
        """Readings ever committed to this store (AUTOINCREMENT never reuses an id)."""
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name='readings'").fetchone()
        return int(row[0]) if row else 0

    @property
    def readings(self) -> int:
        """Readings held now (kept in memory: no query, cheap on the per-reading path)."""
        return self._count

    def stats(self) -> StoreStats:
        oldest = self.db.execute("SELECT min(ts) FROM readings").fetchone()[0]
        return StoreStats(self._count, self._bytes, oldest)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
