"""Events and their transitions on disk (SQLite, WAL, synchronous=FULL).

`events.key` (the idempotency key: the alarm occurrence id, or a manual report's key) is
UNIQUE, so one occurrence is one event however often it is posted. Every write runs in one
`BEGIN IMMEDIATE` transaction: a transition reads the status, checks it with lifecycle.py,
updates the event and appends the transition row, or changes nothing. Thread-safe (one
connection behind a lock; FastAPI runs handlers on a thread pool).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cloud_broker.events.lifecycle import (
    Action,
    Event,
    Source,
    Status,
    Transition,
    apply,
    transition,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,            -- idempotency key (alarm occurrence id)
    source TEXT NOT NULL,                -- alarm | manual
    status TEXT NOT NULL,
    title_zh TEXT NOT NULL,
    description_zh TEXT NOT NULL,
    category TEXT NOT NULL,
    grade TEXT NOT NULL,
    department TEXT,
    handling_time_limit_minutes REAL NOT NULL,
    closing_standard TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    reported_ts INTEGER NOT NULL,        -- epoch ms; the alarm's raise for alarm events
    received_ts INTEGER NOT NULL,        -- when the centre stored it
    deadline_ts INTEGER NOT NULL,
    accepted_ts INTEGER,
    dispatched_ts INTEGER,
    handled_ts INTEGER,
    closed_ts INTEGER,
    overdue INTEGER NOT NULL DEFAULT 0,
    overdue_ts INTEGER,
    escalated_ts INTEGER,                -- the escalation was acknowledged by the broker
    alarm_id TEXT,
    alarm_cleared_ts INTEGER,
    domain TEXT, rule TEXT, device TEXT, device_name TEXT, site TEXT, severity TEXT,
    alarm TEXT                           -- the dc.alarm/1 JSON that reported it
);
CREATE INDEX IF NOT EXISTS events_status ON events (status, department);
CREATE INDEX IF NOT EXISTS events_reported ON events (reported_ts);
CREATE INDEX IF NOT EXISTS events_overdue ON events (overdue, status, deadline_ts);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL REFERENCES events (id),
    from_status TEXT,                    -- NULL for the report that created the event
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    at_ts INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    department TEXT
);
CREATE INDEX IF NOT EXISTS transitions_event ON transitions (event_id, id);
"""

EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(Event))
OPEN_STATUSES = (Status.reported, Status.accepted, Status.dispatched)


class EventNotFound(LookupError):
    """No event has this id (or idempotency key)."""


class EventStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)
        self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise RuntimeError("EventStore.open() first")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._transaction() as db:
            return db.execute(sql, params).fetchall()

    def create(self, event: Event, alarm: Mapping[str, object] | None = None
               ) -> tuple[Event, bool]:
        """Store a new event (its `id` is ignored) and its report transition, unless an event
        with the same key exists; return the stored event and whether it is new."""
        columns = [f for f in EVENT_FIELDS if f != "id"]
        values = [_column(getattr(event, f)) for f in columns]
        alarm_json = json.dumps(alarm, ensure_ascii=False) if alarm is not None else None
        with self._transaction() as db:
            cursor = db.execute(
                f"INSERT INTO events ({', '.join(columns)}, alarm) "
                f"VALUES ({', '.join('?' * (len(columns) + 1))}) "
                "ON CONFLICT (key) DO NOTHING", (*values, alarm_json))
            created = cursor.rowcount == 1
            stored = _event(db.execute("SELECT * FROM events WHERE key = ?",
                                       (event.key,)).fetchone())
            if created:
                _insert_transition(db, stored.id, Transition(
                    None, Status.reported, event.reported_by, event.reported_ts))
        return stored, created

    def get(self, event_id: int) -> Event:
        rows = self._query("SELECT * FROM events WHERE id = ?", (event_id,))
        if not rows:
            raise EventNotFound(f"no event {event_id}")
        return _event(rows[0])

    def find(self, key: str) -> Event | None:
        rows = self._query("SELECT * FROM events WHERE key = ?", (key,))
        return _event(rows[0]) if rows else None

    def transitions(self, event_id: int) -> list[Transition]:
        rows = self._query("SELECT * FROM transitions WHERE event_id = ? ORDER BY id",
                           (event_id,))
        return [Transition(Status(r["from_status"]) if r["from_status"] else None,
                           Status(r["to_status"]), r["actor"], r["at_ts"], r["note"],
                           r["department"]) for r in rows]

    def advance(self, event_id: int, action: Action, by: str, at_ts: int,
                department: str | None = None, note: str = "") -> Event:
        """Apply `action`; raise TransitionError (nothing changes) if it is not allowed."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                raise EventNotFound(f"no event {event_id}")
            event = _event(row)
            step = transition(event.status, action, by, at_ts, department, note)
            after = apply(event, step)
            db.execute("UPDATE events SET status = ?, accepted_ts = ?, dispatched_ts = ?, "
                       "handled_ts = ?, closed_ts = ?, department = ? WHERE id = ?",
                       (str(after.status), after.accepted_ts, after.dispatched_ts,
                        after.handled_ts, after.closed_ts, after.department, event_id))
            _insert_transition(db, event_id, step)
        return after

    def record_alarm_cleared(self, key: str, cleared_ts: int) -> Event:
        """Record when the event's alarm cleared; the first clear time stays (idempotent)."""
        with self._transaction() as db:
            db.execute("UPDATE events SET alarm_cleared_ts = COALESCE(alarm_cleared_ts, ?) "
                       "WHERE key = ?", (cleared_ts, key))
            row = db.execute("SELECT * FROM events WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise EventNotFound(f"no event for alarm {key}")
        return _event(row)

    def events(self, status: Status | None = None, department: str | None = None,
             overdue: bool | None = None, limit: int = 100) -> list[Event]:
        """Newest first."""
        where, params = ["1 = 1"], []
        for column, value in (("status", status), ("department", department),
                              ("overdue", overdue)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(_column(value))
        sql = f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        return [_event(r) for r in self._query(sql, (*params, limit))]

    def reported_before(self, to_ts: int, from_ts: int | None = None) -> list[Event]:
        rows = self._query("SELECT * FROM events WHERE reported_ts < ? AND reported_ts >= ?",
                           (to_ts, from_ts if from_ts is not None else -(2**62)))
        return [_event(r) for r in rows]

    def mark_overdue(self, now_ts: int) -> list[Event]:
        """Mark every open event whose deadline passed before `now_ts`, once; return them."""
        marks = ", ".join("?" * len(OPEN_STATUSES))
        with self._transaction() as db:
            rows = db.execute(f"UPDATE events SET overdue = 1, overdue_ts = ? WHERE overdue = 0 "
                              f"AND deadline_ts < ? AND status IN ({marks}) RETURNING *",
                              (now_ts, now_ts, *map(str, OPEN_STATUSES))).fetchall()
        return sorted((_event(r) for r in rows), key=lambda e: e.id)

    def unescalated(self) -> list[Event]:
        """Overdue events whose escalation the broker has not acknowledged yet."""
        rows = self._query("SELECT * FROM events WHERE overdue = 1 AND escalated_ts IS NULL "
                           "ORDER BY id")
        return [_event(r) for r in rows]

    def mark_escalated(self, event_id: int, ts: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE events SET escalated_ts = ? WHERE id = ?", (ts, event_id))


def _column(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    return str(value) if isinstance(value, Source | Status) else value


def _event(row: sqlite3.Row) -> Event:
    values = {name: row[name] for name in EVENT_FIELDS}
    values.update(source=Source(values["source"]), status=Status(values["status"]),
                  overdue=bool(values["overdue"]))
    return Event(**values)


def _insert_transition(db: sqlite3.Connection, event_id: int, step: Transition) -> None:
    db.execute("INSERT INTO transitions (event_id, from_status, to_status, actor, at_ts, note, "
               "department) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (event_id, str(step.from_status) if step.from_status else None,
                str(step.to_status), step.by, step.at_ts, step.note, step.department))
