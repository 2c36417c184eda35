"""The event centre's HTTP API on a real uvicorn on a free loopback port: events from alarms
(idempotent), unmapped alarms, the lifecycle and its 409s, alarm clears, listing, stats and
the OpenAPI document; and the start-up check of the catalogue against the profiles."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from cloud_broker.events.catalogue import (
    CatalogueError,
    check_catalogue,
    load_catalogue,
)
from cloud_broker.events.service import EventCentre, EventCentreConfig, StartupError
from cloud_broker.rules.engine import AlarmEvent
from dciot.runtime import free_port
from device_profiles.schema import PROFILES_ROOT, load_profiles

MIN = 60_000
CATALOGUE = """\
schema: 1
departments:
  - {id: lighting, name_zh: 城市照明管理处}
  - {id: environment, name_zh: 生态环境分局}
  - {id: drainage, name_zh: 排水服务中心}
entries:
  - domain: smart_pole
    rule: pole_tilted
    category: 市政设施/照明设施
    grade: 二级
    department: lighting
    handling_time_limit_minutes: 120
    closing_standard: 灯杆扶正加固，倾角恢复
  - domain: smart_pole
    rule: pm25_high
    category: 生态环境/大气污染
    grade: 三级
    department: environment
    handling_time_limit_minutes: 240
    closing_standard: 污染源已处置
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def alarm(alarm_id: str, rule: str = "pole_tilted", raised_ts: int | None = None,
          state: str = "raised", cleared_ts: int | None = None) -> dict[str, object]:
    """A dc.alarm/1 transition as the rule engine publishes it."""
    raised_ts = raised_ts if raised_ts is not None else now_ms()
    return AlarmEvent(
        alarm_id=alarm_id, state=state, device="pole-001", device_name="东昌路1号灯杆",
        gateway="gw-a", site="东昌路", domain="smart_pole", profile="dc-smartpole-v1",
        rule=rule, kind="threshold", point="tilt", severity="major",
        title_zh="东昌路1号灯杆灯杆倾斜：6.2°（限值 5°）", description_zh="", value=6.2,
        threshold=5.0, unit="°", ts=cleared_ts or raised_ts, raised_ts=raised_ts,
        cleared_ts=cleared_ts).as_dict()


def centre_config(tmp_path: Path, catalogue: str = CATALOGUE) -> EventCentreConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "catalogue.yaml"
    path.write_text(catalogue, encoding="utf-8")
    return EventCentreConfig(port=free_port(), db_path=tmp_path / "events.sqlite",
                             catalogue_path=path, profiles_dir=PROFILES_ROOT / "streetlight",
                             broker=None, overdue_check_s=3600)


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[EventCentre]:
    centre = EventCentre(centre_config(tmp_path))
    centre.start()
    try:
        yield centre
    finally:
        centre.stop()


@pytest.fixture
def api(centre: EventCentre) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{centre.url}/api/v1", timeout=10) as client:
        yield client


def create(api: httpx.Client, body: dict[str, object], status: int = 201) -> dict[str, object]:
    response = api.post("/events", json=body)
    assert response.status_code == status, response.text
    return dict(response.json())


def walk(api: httpx.Client, event_id: object, *actions: str) -> dict[str, object]:
    event: dict[str, object] = {}
    for action in actions:
        body = {"by": "王五", **({"department": "lighting"} if action == "dispatch" else {})}
        response = api.post(f"/events/{event_id}/{action}", json=body)
        assert response.status_code == 200, response.text
        event = response.json()
    return event


def test_an_alarm_becomes_an_event_from_the_catalogue(api: httpx.Client) -> None:
    raised = now_ms() - 5 * MIN
    event = create(api, {"alarm": alarm("occ-1", raised_ts=raised)})
    assert event["key"] == event["alarm_id"] == "occ-1"
    assert (event["source"], event["status"]) == ("alarm", "reported")
    assert (event["category"], event["grade"], event["department"], event["department_zh"]) == (
        "市政设施/照明设施", "二级", "lighting", "城市照明管理处")
    assert (event["reported_ts"], event["deadline_ts"]) == (raised, raised + 120 * MIN)
    assert (event["device"], event["rule"], event["site"]) == ("pole-001", "pole_tilted", "东昌路")
    assert event["transitions"] == [{"from_status": None, "to_status": "reported",
                                     "by": "iot/pole-001", "at_ts": raised, "note": "",
                                     "department": None}]


def test_a_repeated_alarm_is_the_same_event(api: httpx.Client) -> None:
    first = create(api, {"alarm": alarm("occ-1")})
    again = create(api, {"alarm": alarm("occ-1")}, status=200)
    assert again["id"] == first["id"]
    assert [e["id"] for e in api.get("/events").json()] == [first["id"]]


def test_an_alarm_not_in_the_catalogue_is_refused(api: httpx.Client) -> None:
    response = api.post("/events", json={"alarm": alarm("occ-n", rule="noise_high")})
    assert response.status_code == 422
    assert response.json()["reason"] == "unmapped"
    assert "smart_pole/noise_high" in response.json()["detail"]
    assert api.get("/events").json() == []


def test_the_whole_lifecycle_records_who_when_and_what(api: httpx.Client) -> None:
    event_id = create(api, {"alarm": alarm("occ-1")})["id"]
    api.post(f"/events/{event_id}/accept", json={"by": "受理员张三", "note": "已核实"})
    api.post(f"/events/{event_id}/dispatch", json={"by": "张三", "department": "drainage"})
    api.post(f"/events/{event_id}/handle", json={"by": "李四", "note": "已扶正"})
    closed = api.post(f"/events/{event_id}/close", json={"by": "监管员赵六"}).json()
    assert closed["status"] == "closed"
    assert closed["department"] == "drainage"  # dispatch may send it elsewhere
    steps = [(t["from_status"], t["to_status"], t["by"], t["note"], t["department"])
             for t in closed["transitions"]]
    assert steps == [(None, "reported", "iot/pole-001", "", None),
                     ("reported", "accepted", "受理员张三", "已核实", None),
                     ("accepted", "dispatched", "张三", "", "drainage"),
                     ("dispatched", "handled", "李四", "已扶正", None),
                     ("handled", "closed", "监管员赵六", "", None)]
    stamps = [closed[f"{s}_ts"] for s in ("accepted", "dispatched", "handled", "closed")]
    assert stamps == sorted(stamps)
    assert api.get(f"/events/{event_id}").json() == closed


@pytest.mark.parametrize(("done", "action", "message"), [
    ((), "dispatch", "须先受理才能分拨 / cannot dispatch an event that is reported"),
    ((), "handle", "须先分拨才能处置"),
    ((), "close", "须先处置才能结案"),
    (("accept",), "accept", "事件已受理，不能再受理 / cannot accept an event that is already"),
    (("accept", "dispatch"), "dispatch", "不能再分拨"),
    (("accept", "dispatch", "handle", "close"), "handle", "事件已结案，不能再处置"),
    (("accept", "dispatch", "handle", "close"), "close", "already closed"),
], ids=["dispatch-reported", "handle-reported", "close-reported", "accept-twice",
        "dispatch-twice", "handle-closed", "close-twice"])
def test_an_invalid_transition_is_409_and_changes_nothing(
        api: httpx.Client, done: tuple[str, ...], action: str, message: str) -> None:
    event_id = create(api, {"alarm": alarm("occ-1")})["id"]
    before = walk(api, event_id, *done) if done else api.get(f"/events/{event_id}").json()
    body = {"by": "王五", **({"department": "lighting"} if action == "dispatch" else {})}
    response = api.post(f"/events/{event_id}/{action}", json=body)
    assert response.status_code == 409
    assert response.json()["reason"] == "invalid_transition"
    assert message in response.json()["detail"]
    assert api.get(f"/events/{event_id}").json() == before


@pytest.mark.parametrize(("body", "reason"), [
    ({"by": "王五"}, "invalid_input"),
    ({"by": "王五", "department": "police"}, "unknown_department"),
], ids=["no-department", "unknown-department"])
def test_dispatch_needs_a_known_department(api: httpx.Client, body: dict[str, str],
                                           reason: str) -> None:
    event_id = walk(api, create(api, {"alarm": alarm("occ-1")})["id"], "accept")["id"]
    response = api.post(f"/events/{event_id}/dispatch", json=body)
    assert (response.status_code, response.json()["reason"]) == (422, reason)


def test_an_unknown_event_is_404(api: httpx.Client) -> None:
    assert api.get("/events/999").status_code == 404
    response = api.post("/events/999/accept", json={"by": "王五"})
    assert (response.status_code, response.json()["reason"]) == (404, "not_found")


def test_the_clear_is_recorded_once(api: httpx.Client) -> None:
    create(api, {"alarm": alarm("occ-1")})
    cleared = now_ms()
    first = api.post("/events/by-alarm/occ-1/cleared", json={"cleared_ts": cleared})
    again = api.post("/events/by-alarm/occ-1/cleared", json={"cleared_ts": cleared + 9})
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["alarm_cleared_ts"] == again.json()["alarm_cleared_ts"] == cleared
    assert first.json()["status"] == "reported"  # a clear does not close the event


def test_a_clear_without_its_raise(api: httpx.Client) -> None:
    lost = api.post("/events/by-alarm/occ-9/cleared", json={"cleared_ts": 5})
    assert (lost.status_code, lost.json()["reason"]) == (404, "not_found")
    raised = now_ms() - MIN
    cleared = alarm("occ-9", raised_ts=raised, state="cleared", cleared_ts=raised + 30_000)
    created = api.post("/events/by-alarm/occ-9/cleared",
                       json={"cleared_ts": raised + 30_000, "alarm": cleared})
    assert created.status_code == 201
    assert (created.json()["reported_ts"], created.json()["alarm_cleared_ts"]) == (
        raised, raised + 30_000)
    posted = create(api, {"alarm": cleared}, status=200)
    assert posted["id"] == created.json()["id"]


def test_manual_events(api: httpx.Client) -> None:
    report = {"key": "hotline-0001", "title_zh": "东昌路井盖缺失", "category": "市政设施/井盖",
              "grade": "一级", "department": "drainage", "handling_time_limit_minutes": 60,
              "reported_by": "12345热线"}
    event = create(api, {"manual": report})
    assert (event["source"], event["department_zh"], event["key"]) == (
        "manual", "排水服务中心", "hotline-0001")
    assert event["deadline_ts"] == event["reported_ts"] + 60 * MIN
    assert create(api, {"manual": report}, status=200)["id"] == event["id"]
    unkeyed = {k: v for k, v in report.items() if k != "key"}
    assert create(api, {"manual": unkeyed})["id"] != event["id"]
    bad = api.post("/events", json={"manual": {**report, "key": "k2", "department": "x"}})
    assert (bad.status_code, bad.json()["reason"]) == (422, "unknown_department")
    both = api.post("/events", json={"manual": report, "alarm": alarm("occ-1")})
    assert both.status_code == 422


def test_list_filters_by_status_department_and_overdue(centre: EventCentre,
                                                       api: httpx.Client) -> None:
    late = create(api, {"alarm": alarm("occ-late", raised_ts=now_ms() - 121 * MIN)})
    fresh = create(api, {"alarm": alarm("occ-fresh")})
    smog = create(api, {"alarm": alarm("occ-smog", rule="pm25_high")})
    walk(api, fresh["id"], "accept")
    assert centre.checker is not None
    assert [e.id for e in centre.checker.check()] == [late["id"]]

    def ids(**params: object) -> list[object]:
        return [e["id"] for e in api.get("/events", params=params).json()]

    assert ids() == [smog["id"], fresh["id"], late["id"]]
    assert ids(status="accepted") == [fresh["id"]]
    assert ids(status="reported", department="lighting") == [late["id"]]
    assert ids(department="environment") == [smog["id"]]
    assert ids(overdue="true") == [late["id"]]
    assert ids(overdue="false") == [smog["id"], fresh["id"]]
    assert ids(limit=1) == [smog["id"]]
    assert api.get("/events", params={"status": "lost"}).status_code == 422


def test_stats_by_department(api: httpx.Client) -> None:
    start = now_ms()
    ten_ago = start - 10 * MIN
    a = create(api, {"alarm": alarm("occ-a", raised_ts=ten_ago)})["id"]
    b = create(api, {"alarm": alarm("occ-b", raised_ts=ten_ago)})["id"]
    create(api, {"alarm": alarm("occ-c", raised_ts=start - 300 * MIN)})  # overdue, open
    create(api, {"manual": {"title_zh": "路灯不亮", "category": "市政设施/照明设施",
                            "grade": "三级", "department": "lighting",
                            "handling_time_limit_minutes": 60, "reported_by": "网格员"}})
    create(api, {"alarm": alarm("occ-d", rule="pm25_high")})
    walk(api, a, "accept", "dispatch", "handle", "close")
    walk(api, b, "accept")
    rows = api.get("/stats").json()["departments"]
    assert [r["department"] for r in rows] == ["environment", "lighting", None]
    lighting = rows[1]
    counts = {k: lighting[k] for k in ("events", "from_alarms", "accepted", "dispatched",
                                       "handled", "closed", "overdue")}
    assert counts == {"events": 4, "from_alarms": 3, "accepted": 2, "dispatched": 1,
                      "handled": 1, "closed": 1, "overdue": 1}
    assert (lighting["discovery_rate"], lighting["dispatch_rate"], lighting["handling_rate"],
            lighting["closure_rate"]) == (0.75, 0.5, 1.0, 0.25)
    assert 10 <= lighting["average_handling_minutes"] < 10 + (now_ms() - start) / MIN
    assert lighting["department_zh"] == "城市照明管理处"
    assert rows[2]["events"] == 5
    one = api.get("/stats", params={"department": "lighting"}).json()["departments"]
    assert one == [lighting | {"to_ts": one[0]["to_ts"]}]
    window = api.get("/stats", params={"from": "2020-01-01T00:00:00+08:00",
                                       "to": "2020-02-01T00:00:00"}).json()
    assert window["from_ts"] == 1_577_808_000_000
    assert window["to_ts"] == 1_580_486_400_000  # naive: UTC+8
    assert window["departments"] == [{**window["departments"][0], "events": 0}]


def test_openapi_documents_every_path(api: httpx.Client, centre: EventCentre) -> None:
    document = httpx.get(f"{centre.url}/openapi.json").json()
    assert document["info"]["title"] == "Dongchang event centre"
    assert set(document["paths"]) == {
        "/api/v1/events", "/api/v1/events/{event_id}", "/api/v1/events/by-alarm/{alarm_id}/cleared",
        "/api/v1/events/{event_id}/accept", "/api/v1/events/{event_id}/dispatch",
        "/api/v1/events/{event_id}/handle", "/api/v1/events/{event_id}/close", "/api/v1/stats"}
    schemas = document["components"]["schemas"]
    assert {"EventDetail", "EventOut", "StatsOut", "ErrorOut", "AlarmIn", "ManualIn",
            "TransitionIn"} <= set(schemas)
    accept = document["paths"]["/api/v1/events/{event_id}/accept"]["post"]
    assert {"200", "404", "409"} <= set(accept["responses"])


# --- start-up: the catalogue against the profiles ------------------------------------------

def test_the_shipped_catalogue_matches_the_profiles() -> None:
    check = check_catalogue(load_catalogue(), load_profiles().profiles.values())
    assert isinstance(check.unmapped, dict)


def test_an_entry_naming_a_missing_rule_stops_start_up(tmp_path: Path) -> None:
    broken = CATALOGUE.replace("rule: pm25_high", "rule: pm10_high") + """\
  - domain: pump_station
    rule: sump_level_high
    category: 排水防涝
    grade: 一级
    department: drainage
    handling_time_limit_minutes: 30
    closing_standard: 水位回落
"""
    with pytest.raises(CatalogueError) as caught:
        EventCentre(centre_config(tmp_path, broken)).start()
    assert caught.value.problems == [
        "entries[1] smart_pole/pm10_high: no smart_pole profile declares rule 'pm10_high'",
        "entries[2] pump_station/sump_level_high: no pump_station profile declares rule "
        "'sump_level_high'"]


def test_unmapped_rules_are_reported_at_start_up(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    centre = EventCentre(centre_config(tmp_path))
    with caplog.at_level(logging.WARNING, logger="cloud_broker.events.service"):
        centre.start()
    centre.stop()
    unmapped = sorted(r.getMessage().split()[2] for r in caplog.records
                      if "not mapped" in r.getMessage())
    mapped = {e["rule"] for e in yaml.safe_load(CATALOGUE)["entries"]}
    declared = {r.id for p in load_profiles(PROFILES_ROOT / "streetlight").profiles.values()
                for r in p.alarms}
    assert "smart_pole/noise_high" in unmapped
    assert unmapped == sorted(f"smart_pole/{rule}" for rule in declared - mapped)


def test_a_taken_port_is_a_startup_error(centre: EventCentre, tmp_path: Path) -> None:
    config = centre_config(tmp_path / "second").model_copy(update={"port": centre.config.port})
    with pytest.raises(StartupError, match="cannot listen on"):
        EventCentre(config).start()
