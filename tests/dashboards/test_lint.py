"""lint: a good dashboard passes; each deliberately broken one is reported with its code."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from dashboards.lint import Problem, lint_all, lint_dashboard, lint_deterministic

Factory = Callable[..., dict[str, Any]]
DS = {"type": "influxdb", "uid": "${datasource}"}


def _panel(model: dict[str, Any], panel_id: int) -> dict[str, Any]:
    for panel in model["panels"]:
        if panel["id"] == panel_id:
            return panel
        for nested in panel.get("panels", []):
            if nested["id"] == panel_id:
                return nested
    raise KeyError(panel_id)


def _variable(model: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in model["templating"]["list"] if v["name"] == name)


def _codes(problems: list[Problem]) -> set[str]:
    return {p.code for p in problems}


def test_good_dashboard_passes(dashboard_factory: Factory) -> None:
    assert lint_all([dashboard_factory()]) == []


def test_sdk_built_dashboard_passes() -> None:
    """The same checks accept what grafana-foundation-sdk emits (the lead's builders)."""
    import json

    from grafana_foundation_sdk.builders import dashboard as gdb
    from grafana_foundation_sdk.builders import stat
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import dashboard as gm

    ref = gm.DataSourceRef(type_val="influxdb", uid="${datasource}")
    board = (gdb.Dashboard("SDK").uid("sdk-board")
             .with_variable(gdb.DatasourceVariable("datasource").type("influxdb"))
             .with_variable(gdb.QueryVariable("site").datasource(ref)
                            .query('SHOW TAG VALUES WITH KEY = "site"')
                            .refresh(gm.VariableRefresh.ON_TIME_RANGE_CHANGED))
             .with_panel(stat.Panel().id(1).title("x").description("d").unit("short")
                         .datasource(ref)))
    model = json.loads(JSONEncoder().encode(board.build()))
    model["panels"][0]["targets"] = [{"refId": "A", "datasource": DS, "rawQuery": True,
                                      "query": 'SELECT last("v") FROM "m" WHERE $timeFilter '
                                               'AND "site" =~ /^$site$/'}]
    assert lint_all([model]) == []


def _break_nested_duplicate_id(m: dict[str, Any]) -> None:
    _panel(m, 5)["id"] = 2


def _break_title(m: dict[str, Any]) -> None:
    _panel(m, 5)["title"] = ""


def _break_description(m: dict[str, Any]) -> None:
    del _panel(m, 2)["description"]


def _break_unit(m: dict[str, Any]) -> None:
    _panel(m, 5)["fieldConfig"]["defaults"].pop("unit")


def _break_target_datasource(m: dict[str, Any]) -> None:
    _panel(m, 2)["targets"][0]["datasource"] = {"type": "influxdb", "uid": "influxdb-dciot"}


def _break_panel_datasource(m: dict[str, Any]) -> None:
    _panel(m, 5)["datasource"] = {"type": "influxdb", "uid": "fixed"}


def _break_no_datasource_variable(m: dict[str, Any]) -> None:
    m["templating"]["list"] = m["templating"]["list"][1:]


def _break_refresh(m: dict[str, Any]) -> None:
    _variable(m, "site")["refresh"] = 1


def _break_variable_datasource(m: dict[str, Any]) -> None:
    _variable(m, "domain")["datasource"] = {"type": "influxdb", "uid": "influxdb-dciot"}


def _break_undefined_in_target(m: dict[str, Any]) -> None:
    _panel(m, 5)["targets"][0]["query"] += ' AND "town" =~ /^$town$/'


def _break_undefined_bracket_syntax(m: dict[str, Any]) -> None:
    _panel(m, 2)["targets"][0]["query"] += " AND x = '[[gateway]]'"


def _break_variable_order(m: dict[str, Any]) -> None:
    lst = m["templating"]["list"]
    lst[1], lst[2] = lst[2], lst[1]  # site (uses $domain) now before domain


def _break_range(m: dict[str, Any]) -> None:
    _panel(m, 2)["targets"][0]["query"] = 'SELECT count("v") FROM "m" WHERE time > now() - $__range'


def _break_rate_interval(m: dict[str, Any]) -> None:
    _panel(m, 5)["targets"][0]["query"] = \
        'SELECT mean("v") FROM "m" GROUP BY time($__rate_interval)'


def _break_uid(m: dict[str, Any]) -> None:
    del m["uid"]


def _break_uid_chars(m: dict[str, Any]) -> None:
    m["uid"] = "has space/and-slash"


def _break_id(m: dict[str, Any]) -> None:
    m["id"] = 7


def _break_not_raw(m: dict[str, Any]) -> None:
    _panel(m, 2)["targets"][0]["rawQuery"] = False


def _break_no_targets(m: dict[str, Any]) -> None:
    _panel(m, 2)["targets"] = []


def _break_annotation_variable(m: dict[str, Any]) -> None:
    m["annotations"]["list"].append({
        "name": "告警", "datasource": DS, "enable": True,
        "target": {"refId": "Anno", "rawQuery": True, "query":
                   'SELECT "title" FROM "alarms" WHERE $timeFilter AND "rule" =~ /^$rule$/'}})


def _break_annotation_datasource(m: dict[str, Any]) -> None:
    m["annotations"]["list"].append({
        "name": "告警", "datasource": {"type": "influxdb", "uid": "x"}, "enable": True,
        "query": 'SELECT "title" FROM "alarms" WHERE $timeFilter'})


def _break_interval(m: dict[str, Any]) -> None:
    _panel(m, 2)["interval"] = "$__auto"


def _break_repeat(m: dict[str, Any]) -> None:
    _panel(m, 5)["repeat"] = "device"


@pytest.mark.parametrize(("breaker", "code"), [
    (_break_nested_duplicate_id, "panel-id-duplicate"),
    (_break_title, "panel-title-missing"),
    (_break_description, "panel-description-missing"),
    (_break_unit, "panel-unit-missing"),
    (_break_target_datasource, "target-datasource"),
    (_break_panel_datasource, "panel-datasource"),
    (_break_no_datasource_variable, "no-datasource-variable"),
    (_break_refresh, "variable-refresh"),
    (_break_variable_datasource, "variable-datasource"),
    (_break_undefined_in_target, "undefined-variable"),
    (_break_undefined_bracket_syntax, "undefined-variable"),
    (_break_variable_order, "variable-order"),
    (_break_range, "unsupported-builtin"),
    (_break_rate_interval, "unsupported-builtin"),
    (_break_uid, "uid-missing"),
    (_break_uid_chars, "uid-invalid"),
    (_break_id, "id-set"),
    (_break_not_raw, "target-not-raw"),
    (_break_no_targets, "panel-no-targets"),
    (_break_annotation_variable, "undefined-variable"),
    (_break_annotation_datasource, "annotation-datasource"),
    (_break_repeat, "undefined-variable"),
    (_break_interval, "panel-interval"),
])
def test_broken_dashboard_is_reported(dashboard_factory: Factory,
                                      breaker: Callable[[dict[str, Any]], None],
                                      code: str) -> None:
    model = dashboard_factory()
    breaker(model)
    problems = lint_dashboard(model)
    assert code in _codes(problems), problems
    assert all(p.message for p in problems)


def test_problem_names_dashboard_and_panel(dashboard_factory: Factory) -> None:
    model = dashboard_factory(uid="dc-x")
    _break_unit(model)
    [problem] = lint_dashboard(model)
    assert (problem.dashboard_uid, problem.panel, problem.code) == \
        ("dc-x", "#5 在线", "panel-unit-missing")
    assert "dc-x" in str(problem) and "#5 在线" in str(problem)


def test_text_panel_needs_no_unit_and_rows_need_nothing(dashboard_factory: Factory) -> None:
    model = dashboard_factory()
    assert "unit" not in str(_panel(model, 3).get("fieldConfig"))
    assert "description" not in _panel(model, 1)
    assert lint_dashboard(model) == []


def test_links_must_point_at_dashboards_in_the_set(dashboard_factory: Factory) -> None:
    a = dashboard_factory(uid="dc-a", links=[{"title": "B", "type": "link", "url": "/d/dc-b"}])
    b = dashboard_factory(uid="dc-b")
    _panel(b, 2)["fieldConfig"]["defaults"]["links"] = [
        {"title": "设备", "url": "/d/dc-device?var-device=${__data.fields.device}"}]
    problems = lint_all([a, b])
    assert [(p.dashboard_uid, p.panel, p.code) for p in problems] == [
        ("dc-b", "#2 在线率", "link-unknown-dashboard")]
    assert "dc-device" in problems[0].message
    assert lint_all([a, b, dashboard_factory(uid="dc-device")]) == []


def test_link_from_markdown_is_checked(dashboard_factory: Factory) -> None:
    model = dashboard_factory(uid="dc-a")
    _panel(model, 3)["options"]["content"] = "[水泵](/d/dc-pumps/pumps)"
    assert _codes(lint_all([model])) == {"link-unknown-dashboard"}


def test_duplicate_uids_across_the_set(dashboard_factory: Factory) -> None:
    assert "uid-duplicate" in _codes(lint_all([dashboard_factory(), dashboard_factory()]))


def test_deterministic_builds(dashboard_factory: Factory) -> None:
    first = [dashboard_factory(uid="dc-a"), dashboard_factory(uid="dc-b")]
    assert lint_deterministic(first, copy.deepcopy(first)) == []
    changed = copy.deepcopy(first)
    changed[1]["title"] = "别的"
    changed.append(dashboard_factory(uid="dc-c"))
    assert [(p.dashboard_uid, p.code) for p in lint_deterministic(first, changed)] == [
        ("dc-c", "uid-unstable"), ("dc-b", "build-unstable")]
