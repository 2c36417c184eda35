"""The event centre writes its figures to a real influxd (measurement `event_centre`): events
made through the HTTP API and moved through the lifecycle, counted per department and period
as a user reads them in InfluxDB; a failing InfluxDB never stops the API and is retried."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cloud_broker.config import ConfigError, InfluxConfig
from cloud_broker.events.influx_stats import period_start
from cloud_broker.events.service import EventCentre, EventCentreConfig, load_event_centre_config
from cloud_broker.rules.engine import AlarmEvent
from dciot.runtime import InfluxServer, free_port
from device_profiles.schema import PROFILES_ROOT

MIN = 60_000
CATALOGUE = """\
schema: 1
departments:
  - {id: lighting, name_zh: 城市照明管理处}
  - {id: environment, name_zh: 生态环境分局}
  - {id: drainage, name_zh: 排水服务中心}
  - {id: parks, name_zh: 园林绿化处}
entries:
  - domain: smart_pole
    rule: pole_tilted
    category: 市政设施/照明设施
    grade: 二级
    department: lighting
    handling_time_limit_minutes: 120
    closing_standard: 灯杆扶正加固，倾角恢复
  - domain: smart_pole
    rule: noise_high
    category: 市政设施/照明设施
    grade: 三级
    department: lighting
    handling_time_limit_minutes: 100000
    closing_standard: 噪声源已处置
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


def alarm(alarm_id: str, rule: str, raised_ts: int) -> dict[str, object]:
    return AlarmEvent(
        alarm_id=alarm_id, state="raised", device="pole-001", device_name="东昌路1号灯杆",
        gateway="gw-a", site="东昌路", domain="smart_pole", profile="dc-smartpole-v1",
        rule=rule, kind="threshold", point="tilt", severity="major",
        title_zh="东昌路1号灯杆告警", description_zh="", value=6.2, threshold=5.0, unit="°",
        ts=raised_ts, raised_ts=raised_ts, cleared_ts=None).as_dict()


def manual(department: str, limit_minutes: float) -> dict[str, object]:
    return {"manual": {"title_zh": "路灯不亮", "category": "市政设施/照明设施", "grade": "三级",
                       "department": department, "handling_time_limit_minutes": limit_minutes,
                       "reported_by": "网格员"}}


def centre_config(tmp_path: Path, influx: InfluxConfig | None,
                  stats_interval_s: float) -> EventCentreConfig:
    path = tmp_path / "catalogue.yaml"
    path.write_text(CATALOGUE, encoding="utf-8")
    return EventCentreConfig(port=free_port(), db_path=tmp_path / "events.sqlite",
                             catalogue_path=path, profiles_dir=PROFILES_ROOT / "streetlight",
                             broker=None, overdue_check_s=3600, influx=influx,
                             stats_interval_s=stats_interval_s)


@pytest.fixture
def centre(tmp_path: Path, influxd: InfluxServer, influx_db: str) -> Iterator[EventCentre]:
    centre = EventCentre(centre_config(
        tmp_path, InfluxConfig(url=influxd.url, database=influx_db), 0.2))
    centre.start()
    try:
        yield centre
    finally:
        centre.stop()


class Api:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=f"{url}/api/v1", timeout=10)

    def create(self, body: dict[str, object]) -> int:
        response = self.client.post("/events", json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def walk(self, event_id: int, *actions: str, department: str = "lighting") -> None:
        for action in actions:
            body = {"by": "王五", **({"department": department} if action == "dispatch"
                                     else {})}
            response = self.client.post(f"/events/{event_id}/{action}", json=body)
            assert response.status_code == 200, response.text


def _tick_after(influxd: InfluxServer, db: str, after_ms: int,
                poll: Callable[..., object]) -> dict[tuple[str, str], dict[str, object]]:
    """The points of the first tick written after `after_ms`, by (department, period), with
    the fields a point does not carry left out."""
    def rows() -> list[dict[str, object]]:
        first = influxd.rows(f"SELECT * FROM event_centre WHERE time > {after_ms}ms "
                             f"ORDER BY time LIMIT 1", db=db)
        if not first:
            return []
        return influxd.rows(f"SELECT * FROM event_centre WHERE time = {first[0]['time']}ms",
                            db=db)

    found = poll(rows, 20, what="a tick after the events were made")
    return {(str(r["department"]), str(r["period"])): {
        k: v for k, v in r.items() if v is not None and k not in ("department", "period", "time")}
        for r in found}  # type: ignore[attr-defined]


def _zero(events: int = 0, **counts: int) -> dict[str, object]:
    base: dict[str, object] = {"reported": 0, "accepted": 0, "dispatched": 0, "handled": 0,
                               "closed": 0, "open": 0, "overdue": 0, "events": events}
    return base | counts


def test_figures_per_department_and_period_land_in_influxdb(
        centre: EventCentre, influxd: InfluxServer, influx_db: str,
        poll: Callable[..., object]) -> None:
    api = Api(centre.url)
    now = now_ms()
    today = period_start("day", now)
    t0 = max(now - 10 * MIN, today)  # today, whenever the test runs
    yesterday = today - 1
    a = api.create({"alarm": alarm("occ-a", "pole_tilted", t0)})
    b = api.create({"alarm": alarm("occ-b", "pole_tilted", t0)})
    api.create({"alarm": alarm("occ-c", "pm25_high", now)})
    api.create({"alarm": alarm("occ-y", "noise_high", yesterday)})
    late = api.create(manual("lighting", 0.001))  # overdue 60 ms after its report
    handled = api.create(manual("drainage", 60))
    api.walk(a, "accept", "dispatch", "handle", "close")
    api.walk(b, "accept")
    api.walk(late, "accept", "dispatch")
    api.walk(handled, "accept", "dispatch", "handle", department="drainage")
    done = now_ms()
    points = _tick_after(influxd, influx_db, done, poll)

    lighting = points["lighting", "day"]
    average = lighting.pop("average_handling_minutes")
    assert (t0 - now) / MIN <= float(average) - 10 <= (done - now) / MIN  # type: ignore[arg-type]
    assert lighting == pytest.approx(_zero(3, accepted=1, dispatched=1, closed=1, open=2,
                                           overdue=1) | {
        "discovery_rate": 200 / 3, "dispatch_rate": 200 / 3, "handling_rate": 50.0,
        "closure_rate": 100 / 3, "ontime_rate": 100.0})
    assert points["environment", "day"] == _zero(1, reported=1, open=1) | {
        "discovery_rate": 100.0, "closure_rate": 0.0}  # no dispatch or handling rate yet
    drainage = points["drainage", "day"]
    assert 0 <= float(drainage.pop("average_handling_minutes")) < (done - now) / MIN + 1  # type: ignore[arg-type]
    assert drainage == _zero(1, handled=1, open=1) | {
        "discovery_rate": 0.0, "dispatch_rate": 100.0, "handling_rate": 100.0,
        "closure_rate": 0.0, "ontime_rate": 100.0}
    assert points["parks", "day"] == _zero()  # a department without events: zeros, no rates
    everything = points["all", "day"]
    assert {k: everything[k] for k in _zero()} == _zero(
        5, reported=1, accepted=1, dispatched=1, handled=1, closed=1, open=4, overdue=1)
    assert everything["discovery_rate"] == 60.0

    month_lighting = points["lighting", "month"]
    month_lighting.pop("average_handling_minutes")
    if yesterday >= period_start("month", now):  # yesterday was this month
        assert month_lighting == pytest.approx(_zero(
            4, reported=1, accepted=1, dispatched=1, closed=1, open=3, overdue=1) | {
            "discovery_rate": 75.0, "dispatch_rate": 200 / 3, "handling_rate": 50.0,
            "closure_rate": 25.0, "ontime_rate": 100.0})
        assert points["all", "month"]["events"] == 6
    else:  # the first of the month: the month so far is today
        assert month_lighting == lighting
        assert points["all", "month"]["events"] == 5
    assert set(points) == {(d, p) for d in ("lighting", "environment", "drainage", "parks", "all")
                           for p in ("day", "month")}
    types = {r["fieldKey"]: r["fieldType"] for r in influxd.rows(
        "SHOW FIELD KEYS FROM event_centre", db=influx_db)}
    assert {k for k, t in types.items() if t == "integer"} == set(_zero())
    assert {k for k, t in types.items() if t == "float"} == {
        "discovery_rate", "dispatch_rate", "handling_rate", "closure_rate", "ontime_rate",
        "average_handling_minutes"}


def test_a_failing_influxdb_is_retried_and_never_stops_the_api(
        tmp_path: Path, influxd: InfluxServer, poll: Callable[..., object],
        caplog: pytest.LogCaptureFixture) -> None:
    """The database does not exist and the centre may not create it: writes fail (404) while
    the API keeps working; once the database is there the next tick writes."""
    db = f"later_{time.monotonic_ns() % 10**9}"
    centre = EventCentre(centre_config(tmp_path, InfluxConfig(
        url=influxd.url, database=db, create_database=False), 0.2))
    caplog.set_level(logging.WARNING, logger="cloud_broker.events.influx_stats")
    centre.start()
    try:
        poll(lambda: "cannot write the event centre figures" in caplog.text, 20,
             what="the failed write to be logged")
        event = Api(centre.url).create(manual("parks", 60))
        assert event > 0
        influxd.create_database(db)
        rows = poll(lambda: influxd.rows("SELECT events FROM event_centre WHERE "
                                         "department = 'parks' AND period = 'day'", db=db),
                    20, what="figures written once the database exists")
        assert rows[-1]["events"] == 1  # type: ignore[index]
        assert caplog.text.count("cannot write the event centre figures") == 1
    finally:
        centre.stop()


def test_a_missing_influx_secret_stops_start_up(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCIOT_TEST_NO_SUCH_SECRET", raising=False)
    centre = EventCentre(centre_config(tmp_path, InfluxConfig(
        username="centre", password_env="DCIOT_TEST_NO_SUCH_SECRET"), 60))
    with pytest.raises(ConfigError, match="DCIOT_TEST_NO_SUCH_SECRET"):
        centre.start()
    centre.stop()


@pytest.mark.parametrize(("moment", "day", "month"), [
    ("2024-11-15T17:00:00+08:00", "2024-11-15T00:00:00+08:00", "2024-11-01T00:00:00+08:00"),
    # 20:00 UTC on 30 November is already 1 December in the district
    ("2024-11-30T20:00:00+00:00", "2024-12-01T00:00:00+08:00", "2024-12-01T00:00:00+08:00"),
])
def test_periods_are_local_time(moment: str, day: str, month: str) -> None:
    from datetime import datetime

    def ms(text: str) -> int:
        return int(datetime.fromisoformat(text).timestamp() * 1000)

    assert period_start("day", ms(moment)) == ms(day)
    assert period_start("month", ms(moment)) == ms(month)


def test_the_sample_config_is_valid() -> None:
    sample = Path(__file__).resolve().parents[3] / "cloud_broker" / "events" / "sample.yaml"
    config = load_event_centre_config(sample)
    assert config.influx is None and config.stats_interval_s == 60
    assert config.db_path == sample.parent / "state" / "events.sqlite"
