"""Retention policies, continuous queries and backfill on a real influxd 1.6."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from cloud_broker.config import InfluxConfig, RetentionConfig
from cloud_broker.ingest.retention import (
    MEASUREMENTS,
    HttpInfluxQL,
    RetentionError,
    apply_retention,
    backfill,
)
from dciot.runtime import InfluxServer


def _client(influxd: InfluxServer, db: str) -> HttpInfluxQL:
    return HttpInfluxQL(InfluxConfig(url=influxd.url, database=db))


def _policies(influxd: InfluxServer, db: str) -> dict[str, tuple[str, bool]]:
    return {r["name"]: (r["duration"], r["default"])
            for r in influxd.rows(f'SHOW RETENTION POLICIES ON "{db}"')}


def _cqs(influxd: InfluxServer, db: str) -> dict[str, str]:
    result = influxd.query("SHOW CONTINUOUS QUERIES")["results"][0].get("series", [])
    return {name: query for s in result if s["name"] == db for name, query in s["values"]}


def test_policies_and_queries_are_created_and_reapplying_changes_nothing(
        influxd: InfluxServer, influx_db: str) -> None:
    client = _client(influxd, influx_db)
    apply_retention(client, influx_db, RetentionConfig())
    assert _policies(influxd, influx_db) == {"autogen": ("720h0m0s", True),
                                             "rp_1m": ("8760h0m0s", False),
                                             "rp_1h": ("0s", False)}
    cqs = _cqs(influxd, influx_db)
    assert set(cqs) == {f"cq_{p}_{m}" for p in ("rp_1m", "rp_1h") for m in MEASUREMENTS}
    assert {"smart_pole", "pump_station", "fire", "water", "device_health"} == set(MEASUREMENTS)
    assert "GROUP BY time(1h), *" in cqs["cq_rp_1h_water"]
    assert f"INTO {influx_db}.rp_1m.:MEASUREMENT FROM {influx_db}.autogen.fire" in (
        cqs["cq_rp_1m_fire"])

    again = apply_retention(client, influx_db, RetentionConfig())
    assert not [a for a in again if "continuous query" in a]
    assert _cqs(influxd, influx_db) == cqs

    # A changed query is replaced; changed durations are applied.
    influxd.query(f'DROP CONTINUOUS QUERY "cq_rp_1m_water" ON "{influx_db}"')
    influxd.query(f'CREATE CONTINUOUS QUERY "cq_rp_1m_water" ON "{influx_db}" BEGIN SELECT '
                  f'mean(*) INTO "{influx_db}"."rp_1m".:MEASUREMENT FROM "{influx_db}".'
                  f'"autogen"."water" GROUP BY time(5m), * END')
    changed = apply_retention(client, influx_db, RetentionConfig(raw="2w", minute="90d",
                                                                 hour="1000d"))
    assert "continuous query cq_rp_1m_water replaced" in changed
    assert _cqs(influxd, influx_db) == cqs
    assert _policies(influxd, influx_db) == {"autogen": ("336h0m0s", True),
                                             "rp_1m": ("2160h0m0s", False),
                                             "rp_1h": ("24000h0m0s", False)}


def test_a_duration_influxdb_refuses_is_an_error(influxd: InfluxServer,
                                                 influx_db: str) -> None:
    with pytest.raises(RetentionError, match="at least 1h"):
        apply_retention(_client(influxd, influx_db), influx_db, RetentionConfig(minute="30m"))
    with pytest.raises(ValidationError, match="not an InfluxQL duration"):
        RetentionConfig(raw="30 days")


def test_backfill_aggregates_raw_points_into_both_policies(influxd: InfluxServer,
                                                           influx_db: str) -> None:
    apply_retention(_client(influxd, influx_db), influx_db, RetentionConfig())
    hour = (int(time.time() * 1000) // 3_600_000 - 3) * 3_600_000  # a whole hour, 3 h ago
    lines = []
    for minute in (0, 1):
        for s, (lamp, dim, volt) in enumerate([(True, 10, 220.0), (False, 30, 224.0),
                                               (True, 20, 222.5)]):
            ts = hour + minute * 60_000 + s * 10_000
            lamp_s = "true" if lamp else "false"
            lines.append(f"smart_pole,device=pole-001,town=古楼街道 lamp_on={lamp_s},"
                         f"dimming={dim + minute}i,voltage={volt + minute} {ts}")
    lines.append(f"device_health,device=pole-001 online=1i,silent_s=0.5 {hour}")
    lines.append(f"device_health,device=pole-001 online=0i,silent_s=90.5 {hour + 30_000}")
    influxd.write_lines(influx_db, "\n".join(lines))

    written = backfill(influxd, influx_db, hour + 5_000, hour + 90_000)
    assert written == 2 + 1 + 1 + 1  # smart_pole: 2 minutes + 1 hour; device_health: 1 + 1
    rows = influxd.rows('SELECT * FROM "rp_1m"."smart_pole"', db=influx_db)
    assert [r["time"] for r in rows] == [hour, hour + 60_000]
    first = rows[0]
    assert first["device"] == "pole-001" and first["town"] == "古楼街道"
    expect: dict[str, Any] = {
        "mean_voltage": pytest.approx(222.1666667), "min_voltage": 220.0, "max_voltage": 224.0,
        "last_voltage": 222.5, "mean_dimming": 20.0, "min_dimming": 10, "max_dimming": 30,
        "last_dimming": 20, "min_lamp_on": False, "max_lamp_on": True, "last_lamp_on": True}
    assert {k: first[k] for k in expect} == expect
    assert "mean_lamp_on" not in first
    (hourly,) = influxd.rows('SELECT * FROM "rp_1h"."smart_pole"', db=influx_db)
    assert hourly["time"] == hour
    assert (hourly["min_dimming"], hourly["max_dimming"], hourly["last_dimming"]) == (10, 31, 21)
    assert hourly["mean_voltage"] == pytest.approx(222.6666667)
    (health,) = influxd.rows('SELECT * FROM "rp_1m"."device_health"', db=influx_db)
    assert (health["mean_online"], health["min_online"], health["last_silent_s"]) == (
        0.5, 0, 90.5)
