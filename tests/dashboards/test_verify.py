"""verify on a real influxd with a small hand-written dataset and a hand-built dashboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dashboards.verify import InfluxEndpoint, QueryResult, Selection, parse_time, verify
from dciot.runtime import InfluxServer

pytestmark = pytest.mark.e2e

FROM = 1_700_000_000_000
TO = FROM + 3_600_000
DS = {"type": "influxdb", "uid": "${datasource}"}
LINES = "\n".join([
    f"device_health,domain=smart_pole,site=s1,device=d1 online=1i {FROM + 60_000}",
    f"device_health,domain=smart_pole,site=s2,device=d2 online=0i {FROM + 120_000}",
    f"device_health,domain=pump_station,site=p1,device=d3 online=1i {FROM + 180_000}",
    f'alarms,domain=smart_pole,site=s1,rule=r1 title="灯杆倾斜",value=5 {FROM + 240_000}',
])
GOOD = ('SELECT mean("online") FROM "device_health" WHERE $timeFilter AND '
        '"domain" =~ /^$domain$/ AND "site" =~ /^$site$/ GROUP BY time($__interval)')


def _target(ref: str, query: str) -> dict[str, Any]:
    return {"refId": ref, "datasource": DS, "rawQuery": True, "query": query}


@pytest.fixture
def endpoint(influxd: InfluxServer, influx_db: str) -> InfluxEndpoint:
    influxd.write_lines(influx_db, LINES)
    return InfluxEndpoint(influxd.url, influx_db)


def _by_ref(results: list[QueryResult], where: str) -> dict[str, QueryResult]:
    return {r.ref_id: r for r in results if r.where == where}


def test_good_and_broken_queries(endpoint: InfluxEndpoint,
                                 dashboard_factory: Callable[..., dict[str, Any]]) -> None:
    model = dashboard_factory(targets=[
        _target("A", GOOD),
        _target("B", 'SELECT mean("online") FROM "no_such_measurement" WHERE $timeFilter'),
        _target("C", 'SELECT mean("no_such_field") FROM "device_health" WHERE $timeFilter'),
        _target("D", 'SELECT "online" * "no_such_field" FROM "device_health" WHERE $timeFilter'),
        _target("E", 'SELECT mean("online") FROM "device_health" WHERE "town" =~ /^$town$/'),
        _target("F", 'SELECT mean("online") FROM "device_health" WHERE $timeFilter AND ('),
    ])
    model["annotations"]["list"].append({
        "name": "告警", "datasource": DS, "enable": True,
        "target": _target("Anno", 'SELECT "title" FROM "alarms" WHERE $timeFilter AND '
                                  '"site" =~ /^$site$/')})
    report = verify([model], endpoint, FROM, TO)

    panel = _by_ref(report.results, "#2 在线率")
    assert panel["A"].problem is None and panel["A"].series == 1
    assert panel["A"].query == (
        f'SELECT mean("online") FROM "device_health" WHERE time >= {FROM}ms and '
        f'time <= {TO}ms AND "domain" =~ /^.*$/ AND "site" =~ /^.*$/ GROUP BY time(10s)')
    assert panel["B"].problem == "no data (no series)"
    assert panel["C"].problem == "no data (no series)"
    assert panel["D"].problem == "all values are null"
    assert panel["E"].problem is not None and "$town" in panel["E"].problem
    assert panel["F"].problem is not None and "InfluxDB" in panel["F"].problem
    # the panel nested in the collapsed row and the annotation ran too
    assert _by_ref(report.results, "#5 在线")["A"].problem is None
    assert _by_ref(report.results, "annotation 告警")["Anno"].problem is None
    assert {(r.where, r.ref_id) for r in report.problems} == {
        ("#2 在线率", ref) for ref in "BCDEF"}
    assert not report.ok


def test_an_annotation_may_be_empty_but_must_name_what_is_written(
        endpoint: InfluxEndpoint, dashboard_factory: Callable[..., dict[str, Any]]) -> None:
    """No alarm of a rule in the range is normal; a misspelt field, tag or measurement is not."""
    model = dashboard_factory()
    queries = {
        "none raised": 'SELECT "title", "value" FROM "alarms" WHERE $timeFilter AND '
                       "\"rule\" = 'never_raised'",
        "bad field": 'SELECT "titel" FROM "alarms" WHERE $timeFilter AND "rule" = \'x\'',
        "bad tag": 'SELECT "title" FROM "alarms" WHERE $timeFilter AND "rulle" = \'x\'',
        "bad measurement": 'SELECT "title" FROM "alarm" WHERE $timeFilter',
    }
    for name, query in queries.items():
        model["annotations"]["list"].append({"name": name, "datasource": DS, "enable": True,
                                             "target": _target("Anno", query)})
    results = {r.where: r for r in verify([model], endpoint, FROM, TO).results
               if r.ref_id == "Anno"}
    assert results["annotation none raised"].problem is None
    assert "titel" in str(results["annotation bad field"].problem)
    assert "rulle" in str(results["annotation bad tag"].problem)
    assert "alarm" in str(results["annotation bad measurement"].problem)


def test_variables_are_resolved_in_order(endpoint: InfluxEndpoint,
                                         dashboard_factory: Callable[..., dict[str, Any]]
                                         ) -> None:
    model = dashboard_factory()
    variables = verify([model], endpoint, FROM, TO).variables["dc-test"]
    assert variables["domain"].is_all and variables["domain"].all_value == ".*"
    assert variables["domain"].values == ("pump_station", "smart_pole")
    assert variables["site"].values == ("p1", "s1", "s2")

    chained = verify([model], endpoint, FROM, TO,
                     Selection(overrides={"domain": ["smart_pole"]}))
    assert chained.variables["dc-test"]["site"].values == ("s1", "s2")
    assert chained.ok
    site_query = _by_ref(chained.results, "variable site")["-"].query
    assert site_query.endswith('WHERE "domain" =~ /^(smart_pole)$/')

    first = verify([model], endpoint, FROM, TO, Selection(mode="first"))
    assert first.variables["dc-test"]["domain"].values == ("pump_station",)
    assert first.variables["dc-test"]["site"].values == ("p1",)
    assert first.ok


def test_variable_without_values_is_a_problem(endpoint: InfluxEndpoint,
                                              dashboard_factory: Callable[..., dict[str, Any]]
                                              ) -> None:
    report = verify([dashboard_factory()], endpoint, FROM, TO,
                    Selection(overrides={"domain": ["no_such_domain"]}))
    assert [(r.where, r.problem) for r in report.problems if r.where.startswith("variable")] == [
        ("variable site", "variable has no values")]


def test_repeated_panel_runs_once_per_value(endpoint: InfluxEndpoint,
                                            dashboard_factory: Callable[..., dict[str, Any]]
                                            ) -> None:
    model = dashboard_factory()
    model["panels"][3]["panels"][0]["repeat"] = "site"
    report = verify([model], endpoint, FROM, TO, Selection(overrides={"site": ["s1", "s2"]}))
    queries = [r.query for r in report.results if r.where == "#5 在线"]
    assert len(queries) == 2
    assert '"site" =~ /^s1$/' in queries[0] and '"site" =~ /^s2$/' in queries[1]
    assert report.ok


@pytest.mark.parametrize(("text", "expected"), [
    ("now", 10_000_000), ("now-1h", 10_000_000 - 3_600_000), ("now-30m", 8_200_000),
    ("1700000000000", 1_700_000_000_000),
])
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text, now_ms=10_000_000) == expected


def test_parse_time_refuses_other_text() -> None:
    with pytest.raises(ValueError):
        parse_time("yesterday", now_ms=0)
