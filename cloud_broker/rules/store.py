"""Alarm occurrences on disk (SQLite), so a restart neither raises twice nor loses a clear."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS occurrences (
    alarm_id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    rule TEXT NOT NULL,
    state TEXT NOT NULL,          -- active | cleared
    raised_ts INTEGER NOT NULL,
    cleared_ts INTEGER,
    acked_by TEXT,
    acked_ts INTEGER,
    event TEXT NOT NULL           -- the last published event, JSON
);
CREATE INDEX IF NOT EXISTS occurrences_active ON occurrences (state, device, rule);
"""


class AlarmStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        self._db = db

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "open() first"
        return self._db

    def save(self, event: dict[str, object]) -> None:
        """Record the occurrence's latest state (insert on raise, update afterwards)."""
        state = "cleared" if event["state"] == "cleared" else "active"
        with self._lock:
            self.db.execute(
                "INSERT INTO occurrences VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(alarm_id) DO UPDATE SET state=excluded.state, "
                "cleared_ts=excluded.cleared_ts, acked_by=excluded.acked_by, "
                "acked_ts=excluded.acked_ts, event=excluded.event",
                (event["alarm_id"], event["device"], event["rule"], state, event["raised_ts"],
                 event.get("cleared_ts"), event.get("acked_by"), event.get("acked_ts"),
                 json.dumps(event, ensure_ascii=False)))

    def active(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT event FROM occurrences WHERE state = 'active'").fetchall()
        return [json.loads(r[0]) for r in rows]

    def get(self, alarm_id: str) -> dict[str, object] | None:
        with self._lock:
            row = self.db.execute("SELECT event FROM occurrences WHERE alarm_id = ?",
                                  (alarm_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
