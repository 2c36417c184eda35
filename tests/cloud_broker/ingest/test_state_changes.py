"""state_changes on a real ingest: a point when a bool point changes, none for the first reading
after start, none for unchanged values or redeliveries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEVICES = [{"id": "pole-001", "gateway": "gw-a", "profile": "dc-smartpole-v1",
            "site": "东昌路", "town": "古楼街道"}]


def test_a_point_per_change_at_the_reading_time(start_cloud: Callable[..., Any],
                                                poll: Callable[..., Any],
                                                now_ms: Callable[[], int]) -> None:
    cloud = start_cloud(DEVICES)
    t = now_ms() - 60_000
    lamp = [False, False, True, True, False]
    first = [(t + i * 1000, {"lamp_on": on, "emergency_button": False, "pm25": 10 + i})
             for i, on in enumerate(lamp)]
    cloud.readings("gw-a", "pole-001", first)
    cloud.readings("gw-a", "pole-001", [(t + 5000, {"lamp_on": False, "pm25": 1}),
                                        (t + 6000, {"lamp_on": True, "pm25": 1})])
    cloud.readings("gw-a", "pole-001", first)  # a redelivery: older than what was seen
    cloud.readings("gw-a", "pole-001", [(t + 7000, {"pm25": 2})])  # lamp_on not in it
    cloud.readings("gw-a", "pole-001", [(t + 8000, {"pm25": 3, "lamp_on": True})])
    poll(lambda: cloud.rows(f"SELECT pm25 FROM smart_pole WHERE time = {t + 8000}ms"), 10,
         what="the last reading")
    rows = cloud.rows("SELECT * FROM state_changes")
    assert [(r["time"], r["point"], r["value"]) for r in rows] == [
        (t + 2000, "lamp_on", True), (t + 4000, "lamp_on", False), (t + 6000, "lamp_on", True)]
    assert all((r["device"], r["domain"], r["town"], r["site"], r["profile"]) == (
        "pole-001", "smart_pole", "古楼街道", "东昌路", "dc-smartpole-v1") for r in rows)
