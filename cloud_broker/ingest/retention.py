"""Retention policies and downsampling continuous queries (InfluxDB 1.x InfluxQL), idempotent.

    autogen   raw points (the default policy), DURATION retention.raw (default 30d)
    rp_1m     1-minute aggregates, DURATION retention.minute (default 365d)
    rp_1h     1-hour aggregates, DURATION retention.hour (default INF)

and per (measurement, policy) a continuous query `cq_<policy>_<measurement>`:

    SELECT mean(*), min(*), max(*), last(*) INTO "<db>"."<rp>".:MEASUREMENT
    FROM "<db>"."autogen"."<measurement>" GROUP BY time(1m|1h), *

for every domain measurement and device_health. Field `x` becomes `mean_x`, `min_x`, `max_x`,
`last_x`; InfluxDB 1.6 gives booleans `min_`, `max_` and `last_` (no mean), strings only `last_`.
A continuous query only aggregates recent intervals, so `backfill` runs the same SELECT ... INTO
over a time range (history written before the queries existed).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from cloud_broker.config import InfluxConfig, RetentionConfig
from device_profiles.schema import Domain

RAW_POLICY = "autogen"
MEASUREMENTS: tuple[str, ...] = (*(str(d) for d in Domain), "device_health")
"""What is downsampled: readings of every domain, and device health."""


@dataclass(frozen=True)
class Rollup:
    policy: str
    interval: str
    interval_ms: int


ROLLUPS = (Rollup("rp_1m", "1m", 60_000), Rollup("rp_1h", "1h", 3_600_000))


class RetentionError(Exception):
    """InfluxDB refused a statement, or could not be reached (`retryable`)."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class InfluxQL(Protocol):
    """Runs one InfluxQL statement; returns the parsed JSON, raises on an error."""

    def query(self, q: str, db: str | None = None) -> dict[str, Any]: ...


class HttpInfluxQL:
    """InfluxQL over the v1 `/query` endpoint (POST, so statements that change data work)."""

    def __init__(self, config: InfluxConfig, password: str | None = None) -> None:
        self.config = config
        self._headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if config.username:
            cred = f"{config.username}:{password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        params = {"q": q, "epoch": "ms", **({"db": db} if db else {})}
        request = urllib.request.Request(f"{self.config.url.rstrip('/')}/query",
                                         data=urllib.parse.urlencode(params).encode(),
                                         headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                result: dict[str, Any] = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode("utf-8", "replace")
            raise RetentionError(f"{q[:80]!r}: HTTP {err.code}: {detail}",
                                 retryable=err.code >= 500) from err
        except (OSError, ValueError) as err:
            raise RetentionError(f"InfluxDB at {self.config.url} unreachable: {err}",
                                 retryable=True) from err
        errors = [result.get("error")] + [s.get("error") for s in result.get("results", [])]
        if any(errors):
            raise RetentionError(f"{q[:120]!r}: {next(e for e in errors if e)}")
        return result


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rollup_select(db: str, rollup: Rollup, measurement: str, where: str = "") -> str:
    return (f"SELECT mean(*), min(*), max(*), last(*) INTO {_ident(db)}.{_ident(rollup.policy)}"
            f".:MEASUREMENT FROM {_ident(db)}.{_ident(RAW_POLICY)}.{_ident(measurement)}"
            f"{where} GROUP BY time({rollup.interval}), *")


def continuous_queries(db: str) -> dict[str, str]:
    """Name -> CREATE CONTINUOUS QUERY statement, for every rollup and measurement."""
    return {f"cq_{r.policy}_{m}": f"CREATE CONTINUOUS QUERY {_ident(f'cq_{r.policy}_{m}')} "
            f"ON {_ident(db)} BEGIN {rollup_select(db, r, m)} END"
            for r in ROLLUPS for m in MEASUREMENTS}


def _normalised(statement: str) -> str:
    """SHOW CONTINUOUS QUERIES drops quotes it does not need: compare without any."""
    return re.sub(r"\s+", " ", statement.replace('"', "")).strip()


def _series(result: dict[str, Any]) -> list[dict[str, Any]]:
    return result.get("results", [{}])[0].get("series", []) or []


def apply_retention(influx: InfluxQL, db: str, config: RetentionConfig) -> list[str]:
    """Create or alter the policies, and create (or drop and re-create when changed) the
    continuous queries; return what was done. Safe to run at every start."""
    done: list[str] = []
    existing = {row[0] for s in _series(influx.query(f"SHOW RETENTION POLICIES ON {_ident(db)}"))
                for row in s.get("values", [])}
    for policy, duration in ((RAW_POLICY, config.raw), (ROLLUPS[0].policy, config.minute),
                             (ROLLUPS[1].policy, config.hour)):
        if policy in existing:
            influx.query(f"ALTER RETENTION POLICY {_ident(policy)} ON {_ident(db)} "
                         f"DURATION {duration} SHARD DURATION 0s")
            done.append(f"retention policy {policy}: {duration}")
        else:
            default = " DEFAULT" if policy == RAW_POLICY else ""
            influx.query(f"CREATE RETENTION POLICY {_ident(policy)} ON {_ident(db)} "
                         f"DURATION {duration} REPLICATION 1 SHARD DURATION 0s{default}")
            done.append(f"retention policy {policy} created: {duration}")
    current = {row[0]: row[1] for s in _series(influx.query("SHOW CONTINUOUS QUERIES"))
               if s.get("name") == db for row in s.get("values", [])}
    for name, statement in continuous_queries(db).items():
        if name in current and _normalised(current[name]) == _normalised(statement):
            continue
        if name in current:
            influx.query(f"DROP CONTINUOUS QUERY {_ident(name)} ON {_ident(db)}")
        influx.query(statement)
        done.append(f"continuous query {name} {'replaced' if name in current else 'created'}")
    return done


def backfill(influx: InfluxQL, db: str, start_ms: int, end_ms: int,
             measurements: Collection[str] | None = None,
             policies: Collection[str] | None = None) -> int:
    """Aggregate raw points in [start_ms, end_ms) into rp_1m and rp_1h (or only `policies`,
    only `measurements`), as the continuous queries would have (the range widened to whole
    intervals); return points written."""
    written = 0
    for rollup in ROLLUPS:
        if policies is not None and rollup.policy not in policies:
            continue
        start = start_ms - start_ms % rollup.interval_ms
        end = -(-end_ms // rollup.interval_ms) * rollup.interval_ms
        where = f" WHERE time >= {start}ms AND time < {end}ms"
        for measurement in MEASUREMENTS:
            if measurements is not None and measurement not in measurements:
                continue
            result = influx.query(rollup_select(db, rollup, measurement, where), db=db)
            for series in _series(result):
                written += sum(int(row[1]) for row in series.get("values", []))
    return written
