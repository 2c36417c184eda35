"""Durable ledger of command ids (SQLite, WAL, synchronous=FULL): each command runs at most once.

`admit` is called when a request arrives, before anything is executed, and commits the id:
- a new id whose expiry has not passed -> "execute" (the caller runs it and calls `finish`);
- a new id past its expiry -> "expired": recorded with its `expired` result, never executed;
- an id already in the ledger -> "duplicate": the earlier result when it has one (a redelivery
  is answered again, not executed again), else a `duplicate` result (it is still running, or
  the agent stopped while running it: at most once, so it is not retried).

The commit happens before execution, so a crash between the two leaves an id without a result:
`unfinished()` lists them for the agent to report after a restart. The ledger is bounded: ids
admitted more than `max_age_s` ago and all but the newest `max_ids` are dropped (on every
`admit`, or `prune`), counted by reason in the file itself; a dropped id that had not expired
yet ("unexpired") could run again if redelivered, so keep `max_age_s` above the longest command
lifetime (24 h in the contract) and `max_ids` above the commands of that long. `DeviceQueues`
(queues.py) orders execution per device. Used from one thread (the agent's event loop).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_agent.commands.contract import CommandRequest, CommandResult, make_result

SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    request_json TEXT NOT NULL,
    admitted_ts INTEGER NOT NULL,
    expires_ts INTEGER NOT NULL,
    result_json TEXT
);
CREATE INDEX IF NOT EXISTS commands_admitted ON commands (admitted_ts);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

Decision = Literal["execute", "expired", "duplicate"]
DROP_REASONS = ("age", "count", "unexpired")


@dataclass(frozen=True)
class Admission:
    """What to do with an arrived request; `result` is what to publish now (None: execute)."""

    decision: Decision
    result: CommandResult | None = None
    dropped: dict[str, int] = field(default_factory=dict)


class CommandLedger:
    def __init__(self, path: Path, max_ids: int = 10_000, max_age_s: float = 7 * 86400) -> None:
        if max_ids < 1 or max_age_s <= 0:
            raise ValueError("max_ids and max_age_s must be positive")
        self.path = path
        self.max_ids = max_ids
        self.max_age_s = max_age_s
        self._db: sqlite3.Connection | None = None

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

    def admit(self, request: CommandRequest, now_ms: int) -> Admission:
        """Record the arrival of `request` and say whether to execute it (see module doc)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT result_json FROM commands WHERE id = ?",
                                  (request.id,)).fetchone()
            if row is not None:
                self._count("duplicate")
                return Admission("duplicate", self._duplicate_result(request, row[0], now_ms))
            result = None
            if request.expired(now_ms):
                late_s = (now_ms - request.expires_ts) / 1000
                result = make_result(
                    request, "expired", now_ms,
                    reason_zh=f"命令到达网关时已过期 {late_s:.0f} 秒，未执行",
                    reason_en=f"arrived {late_s:.1f} s after its expiry; not executed")
                self._count("expired")
            else:
                self._count("admitted")
            self.db.execute(
                "INSERT INTO commands (id, request_json, admitted_ts, expires_ts, result_json) "
                "VALUES (?, ?, ?, ?, ?)",
                (request.id, request.encode().decode(), now_ms, request.expires_ts,
                 None if result is None else result.encode().decode()))
            dropped = self._prune(now_ms)
        return Admission("execute" if result is None else "expired", result, dropped)

    def _duplicate_result(self, request: CommandRequest, result_json: str | None,
                          now_ms: int) -> CommandResult:
        if result_json is not None:
            return CommandResult.decode(result_json)
        return make_result(request, "duplicate", now_ms,
                           reason_zh=f"命令 {request.id} 已在执行或执行中断，不重复执行",
                           reason_en=f"command {request.id} was already admitted and has no "
                                     "result yet; not executed again")

    def finish(self, command_id: str, result: CommandResult) -> None:
        """Store the result of an admitted command (a later one replaces a `queued` one)."""
        if result.id != command_id:
            raise ValueError(f"result is for {result.id!r}, not {command_id!r}")
        with self.db:
            self.db.execute("BEGIN")
            updated = self.db.execute("UPDATE commands SET result_json = ? WHERE id = ?",
                                      (result.encode().decode(), command_id)).rowcount
        if not updated:
            raise KeyError(f"command {command_id!r} was not admitted (or has been dropped)")

    def result(self, command_id: str) -> CommandResult | None:
        row = self.db.execute("SELECT result_json FROM commands WHERE id = ?",
                              (command_id,)).fetchone()
        return None if row is None or row[0] is None else CommandResult.decode(row[0])

    def unfinished(self) -> list[CommandRequest]:
        """Admitted commands without a result, oldest first (after a restart: interrupted)."""
        rows = self.db.execute("SELECT request_json FROM commands WHERE result_json IS NULL "
                               "ORDER BY seq").fetchall()
        return [CommandRequest.decode(r[0]) for r in rows]

    def prune(self, now_ms: int) -> dict[str, int]:
        """Apply the bounds now; return what was dropped by reason (totals kept in the file)."""
        with self.db:
            self.db.execute("BEGIN")
            return self._prune(now_ms)

    def _prune(self, now_ms: int) -> dict[str, int]:
        cutoff = now_ms - int(self.max_age_s * 1000)
        by_age = self.db.execute("DELETE FROM commands WHERE admitted_ts < ? RETURNING expires_ts",
                                 (cutoff,)).fetchall()
        by_count = self.db.execute(
            "DELETE FROM commands WHERE seq <= (SELECT seq FROM commands ORDER BY seq DESC "
            "LIMIT 1 OFFSET ?) RETURNING expires_ts", (self.max_ids,)).fetchall()
        dropped = {"age": len(by_age), "count": len(by_count),
                   "unexpired": sum(1 for (exp,) in [*by_age, *by_count] if exp >= now_ms)}
        for reason, n in dropped.items():
            if n:
                self._count(f"dropped_{reason}", n)
        return {k: v for k, v in dropped.items() if v}

    def _count(self, name: str, n: int = 1) -> None:
        self.db.execute("INSERT INTO counters VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                        (name, n))

    def totals(self) -> dict[str, int]:
        """Counters since the file began: admitted, expired, duplicate, dropped_{reason}."""
        totals = {name: 0 for name in ("admitted", "expired", "duplicate")}
        totals.update({f"dropped_{r}": 0 for r in DROP_REASONS})
        totals.update({name: int(v) for name, v in
                       self.db.execute("SELECT name, value FROM counters")})
        return totals

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM commands").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
