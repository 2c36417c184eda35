"""The health tick on a real ingest: device_health, gateway_health, alarm_summary and
ingest_stats land for every known device and gateway, and follow readings, alarms and silence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from device_profiles.schema import load_profiles
from edge_agent.uplink import contract

DEVICES = [
    {"id": "pole-001", "gateway": "gw-a", "profile": "dc-smartpole-v1", "site": "东昌路",
     "town": "古楼街道", "lat": 36.456, "lon": 115.965, "interval_s": 1.0},
    {"id": "pole-002", "gateway": "gw-a", "profile": "dc-smartpole-v1", "interval_s": 1.0},
    {"id": "pole-003", "gateway": "gw-b", "profile": "dc-smartpole-v1", "site": "柳园路",
     "town": "柳园街道", "lat": 36.442, "lon": 115.97, "interval_s": 1.0},
]
POLE_RULES = {r.id: str(r.severity) for r in load_profiles().get("dc-smartpole-v1").alarms}


def _latest(cloud: Any, measurement: str, where: str) -> dict[str, Any] | None:
    rows = cloud.rows(f"SELECT * FROM {measurement} WHERE {where} ORDER BY time DESC LIMIT 1")
    return rows[0] if rows else None


def test_device_health_follows_readings_alarms_and_silence(
        start_cloud: Callable[..., Any], poll: Callable[..., Any],
        now_ms: Callable[[], int]) -> None:
    cloud = start_cloud(DEVICES, health_interval_s=0.3)
    # Before any reading: every known device has a health point, offline, never seen.
    never = poll(lambda: _latest(cloud, "device_health", "device='pole-002'"), 10,
                 what="device_health of a device that never reported")
    assert (never["online"], never["status"], never["last_seen"]) == (0, 2, 0)
    assert never["town"] == "未分配" and never["site"] == "未分配"
    assert never["gateway"] == "gw-a" and never["domain"] == "smart_pole"
    assert never["profile"] == "dc-smartpole-v1"
    assert never["silent_s"] >= 0 and never["lat"] is None and never["active_alarms"] == 0

    sent = now_ms()
    cloud.readings("gw-a", "pole-001", [(sent, {"lamp_on": True, "pm25": 20})])
    online = poll(lambda: cloud.rows("SELECT * FROM device_health WHERE device='pole-001' "
                                     "AND online = 1"), 10, what="pole-001 online")[0]
    assert online["status"] == 0 and online["active_alarms"] == 0
    assert sent - 1000 <= online["last_seen"] <= online["time"]
    assert 0 <= online["silent_s"] < 3
    assert (online["lat"], online["lon"]) == (36.456, 115.965)
    assert (online["town"], online["site"]) == ("古楼街道", "东昌路")

    cloud.readings("gw-a", "pole-001", [(now_ms(), {"emergency_button": True})])
    alarmed = poll(lambda: cloud.rows("SELECT * FROM device_health WHERE device='pole-001' "
                                      "AND status = 1"), 10, what="pole-001 in alarm")[0]
    assert (alarmed["online"], alarmed["active_alarms"]) == (1, 1)
    # The alarm itself carries the place.
    (raised,) = poll(lambda: cloud.rows("SELECT * FROM alarms WHERE device='pole-001'"), 10,
                     what="the alarm point")
    assert (raised["town"], raised["site"], raised["state"]) == ("古楼街道", "东昌路", "raised")

    # Silence: after offline_after_intervals (3) x 1 s without a reading, offline (even in alarm).
    last_reading = now_ms()
    silent = poll(lambda: cloud.rows(
        f"SELECT * FROM device_health WHERE device='pole-001' AND status = 2 "
        f"AND time > {last_reading + 3000}ms"), 15, what="pole-001 offline after silence")[0]
    assert silent["online"] == 0 and silent["active_alarms"] == 1
    assert silent["silent_s"] >= 3 and silent["last_seen"] <= last_reading

    kinds = {r["fieldKey"]: r["fieldType"] for r in cloud.rows("SHOW FIELD KEYS FROM "
                                                              "device_health")}
    assert kinds == {"online": "integer", "status": "integer", "active_alarms": "integer",
                     "last_seen": "integer", "silent_s": "float", "lat": "float",
                     "lon": "float"}


def test_alarm_summary_counts_active_alarms_per_site_and_rule(
        start_cloud: Callable[..., Any], poll: Callable[..., Any],
        now_ms: Callable[[], int]) -> None:
    cloud = start_cloud(DEVICES, gateways=("gw-a", "gw-b"), health_interval_s=0.3)
    ts = now_ms()
    cloud.readings("gw-a", "pole-001", [(ts, {"emergency_button": True, "noise": 80.0})])
    cloud.readings("gw-a", "pole-002", [(ts, {"emergency_button": True})])
    poll(lambda: cloud.sample("dciot_alarms_active") == 3, 10, what="three active alarms")

    def summary() -> dict[tuple[str, ...], int]:
        rows = cloud.rows(f"SELECT last(active) FROM alarm_summary WHERE time > {ts}ms "
                          "GROUP BY *")
        return {(r["domain"], r["town"], r["site"], r["rule"], r["severity"]): r["last"]
                for r in rows}

    expected = {("smart_pole", town, site, rule, severity): 0
                for town, site in (("古楼街道", "东昌路"), ("未分配", "未分配"),
                                   ("柳园街道", "柳园路"))
                for rule, severity in POLE_RULES.items()}
    expected[("smart_pole", "古楼街道", "东昌路", "emergency_button_pressed", "critical")] = 1
    expected[("smart_pole", "古楼街道", "东昌路", "noise_high", "minor")] = 1
    expected[("smart_pole", "未分配", "未分配", "emergency_button_pressed", "critical")] = 1
    poll(lambda: summary().get(("smart_pole", "未分配", "未分配", "emergency_button_pressed",
                                "critical")), 10, what="alarm_summary with the active alarms")
    assert summary() == expected


def test_gateway_health_and_ingest_stats(start_cloud: Callable[..., Any],
                                         poll: Callable[..., Any],
                                         now_ms: Callable[[], int]) -> None:
    cloud = start_cloud(DEVICES, health_interval_s=0.3)  # gw-b never says anything
    before = now_ms()
    cloud.publish(contract.buffer_status_topic("gw-a"), {
        "schema": contract.BUFFER_STATUS_SCHEMA, "gateway": "gw-a", "ts": before,
        "readings": 7, "bytes": 4096, "oldest_ts": before - 5000, "dropped": {"size": 3},
        "dropped_total": 3}, retain=True)
    for i in range(5):
        cloud.readings("gw-a", "pole-001", [(now_ms() + i, {"pm25": 10 + i})])

    a = poll(lambda: cloud.rows(f"SELECT * FROM gateway_health WHERE gateway='gw-a' AND "
                                f"backlog = 7 AND time > {before}ms"), 10,
             what="gw-a health with its buffer report")[0]
    assert (a["online"], a["dropped_total"]) == (1, 3)
    assert before - 60_000 < a["last_seen"] <= a["time"]
    assert (a["town"], a["site"]) == ("古楼街道", "东昌路")
    b = poll(lambda: _latest(cloud, "gateway_health", "gateway='gw-b'"), 10, what="gw-b")
    assert (b["online"], b["last_seen"], b["backlog"], b["dropped_total"]) == (0, 0, 0, 0)
    assert (b["town"], b["site"]) == ("柳园街道", "柳园路")

    busy = poll(lambda: cloud.rows("SELECT * FROM ingest_stats WHERE points_per_s > 0"), 10,
                what="ingest_stats of a tick with readings")[0]
    assert busy["messages_per_s"] >= busy["points_per_s"] > 0
    assert busy["write_ms_max"] >= busy["write_ms_mean"] > 0
    assert busy["rejected_per_s"] == 0 and busy["pending"] >= 0 and busy["lag_s"] >= 0
    cloud.publish(contract.readings_topic("gw-a", "pole-001"), b"not json")
    poll(lambda: cloud.rows("SELECT * FROM ingest_stats WHERE rejected_per_s > 0"), 10,
         what="a rejected message in ingest_stats")
    # The cloud applied the retention policies and continuous queries at start-up.
    series = cloud.influx.query("SHOW CONTINUOUS QUERIES")["results"][0]["series"]
    names = {row[0] for s in series if s["name"] == cloud.db for row in s.get("values", [])}
    assert "cq_rp_1m_smart_pole" in names and "cq_rp_1h_device_health" in names
