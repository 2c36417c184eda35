"""What the LoRaWAN listener must remember: the last accepted uplink counter (and MIC) of every
session, and for OTAA devices their current session and the DevNonces already used.

Replay protection needs this to survive restarts: with `state_path` set it lives in a small
SQLite file (WAL journal, written on every accepted uplink and join; created readable by its
owner only, since it holds OTAA session keys) that belongs beside the edge buffer. Without it,
everything is kept in memory: after a restart the first frame of each ABP device is accepted
whatever its counter (a replay right after a restart would be accepted once), and OTAA
devices are unknown until they join again.

A counter is keyed by device id plus a fingerprint of its DevAddr and NwkSKey (a SHA-256
prefix, not the key): re-provisioning a device with new keys, or a new OTAA join, starts a
fresh counter.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge_agent.protocols.semtech_udp.lorawan import FcntState

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS fcnt_up (session TEXT PRIMARY KEY, fcnt INTEGER NOT NULL, "
    "mic BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS otaa_session (device TEXT PRIMARY KEY, dev_addr INTEGER NOT "
    "NULL, nwk_s_key BLOB NOT NULL, app_s_key BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS dev_nonce (device TEXT NOT NULL, nonce INTEGER NOT NULL, "
    "PRIMARY KEY (device, nonce))",
)


def session_key(device_id: str, dev_addr: int, nwk_s_key: bytes) -> str:
    """Device id and a fingerprint of its session (never the key itself)."""
    digest = hashlib.sha256(dev_addr.to_bytes(4, "big") + nwk_s_key).hexdigest()[:16]
    return f"{device_id}:{digest}"


@dataclass(frozen=True)
class OtaaSession:
    dev_addr: int
    nwk_s_key: bytes
    app_s_key: bytes

    def __repr__(self) -> str:
        return f"OtaaSession(dev_addr={self.dev_addr:08x})"


class LorawanState:
    """Counters, OTAA sessions and DevNonces: SQLite at `path`, or memory when None."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fcnt: dict[str, FcntState] = {}
        self._sessions: dict[str, OtaaSession] = {}
        self._nonces: set[tuple[str, int]] = set()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.touch(mode=0o600)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            db.execute(statement)
        self._fcnt = {s: FcntState(int(f), bytes(m))
                      for s, f, m in db.execute("SELECT session, fcnt, mic FROM fcnt_up")}
        self._sessions = {d: OtaaSession(int(a), bytes(n), bytes(k)) for d, a, n, k in db.execute(
            "SELECT device, dev_addr, nwk_s_key, app_s_key FROM otaa_session")}
        self._nonces = {(d, int(n)) for d, n in db.execute("SELECT device, nonce FROM dev_nonce")}
        self._db = db

    def fcnt(self, session: str) -> FcntState | None:
        return self._fcnt.get(session)

    def put_fcnt(self, session: str, state: FcntState) -> None:
        self._fcnt[session] = state
        self._write("INSERT OR REPLACE INTO fcnt_up (session, fcnt, mic) VALUES (?, ?, ?)",
                    (session, state.fcnt, state.mic))

    def otaa_session(self, device_id: str) -> OtaaSession | None:
        return self._sessions.get(device_id)

    def put_otaa_session(self, device_id: str, session: OtaaSession) -> None:
        self._sessions[device_id] = session
        self._write("INSERT OR REPLACE INTO otaa_session (device, dev_addr, nwk_s_key, "
                    "app_s_key) VALUES (?, ?, ?, ?)",
                    (device_id, session.dev_addr, session.nwk_s_key, session.app_s_key))

    def dev_nonce_used(self, device_id: str, nonce: int) -> bool:
        return (device_id, nonce) in self._nonces

    def use_dev_nonce(self, device_id: str, nonce: int) -> None:
        self._nonces.add((device_id, nonce))
        self._write("INSERT OR IGNORE INTO dev_nonce (device, nonce) VALUES (?, ?)",
                    (device_id, nonce))

    def _write(self, statement: str, values: tuple[object, ...]) -> None:
        if self._db is not None:
            self._db.execute(statement, values)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
