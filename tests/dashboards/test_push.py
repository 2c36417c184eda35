"""push against the stand-in Grafana (tests/dashboards/conftest.py): creates, then is idempotent,
updates only what changed, and fails clearly on a bad token. Not a real Grafana."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest

from dashboards.catalog import DATASOURCE_UID, BuiltDashboard
from dashboards.provisioning import DatasourceSettings
from dashboards.push import Change, PushError, push
from dciot.runtime.ports import free_port

Built = Callable[..., BuiltDashboard]
ENV = {"INFLUX_PASSWORD": "influx-pass-42"}
SETTINGS = DatasourceSettings(url="http://127.0.0.1:8086", database="dciot", user="grafana",
                              password_env="INFLUX_PASSWORD")


def _actions(changes: list[Change]) -> list[tuple[str, str, str]]:
    return [(c.kind, c.uid, c.action) for c in changes]


def _board_set(built_factory: Built) -> list[BuiltDashboard]:
    return [built_factory("dc-a", "dc-folder-a", "目录甲"),
            built_factory("dc-b", "dc-folder-b", "目录乙"),
            built_factory("dc-c", "dc-folder-a", "目录甲")]


def _push(grafana: Any, dashboards: list[BuiltDashboard], settings: DatasourceSettings = SETTINGS,
          **kw: Any) -> list[Change]:
    return push(grafana.url, grafana.token, dashboards, settings, environ=ENV, **kw)


def test_first_push_creates_second_is_unchanged(grafana: Any, built_factory: Built) -> None:
    dashboards = _board_set(built_factory)
    assert _actions(_push(grafana, dashboards)) == [
        ("datasource", DATASOURCE_UID, "created"),
        ("folder", "dc-folder-a", "created"), ("folder", "dc-folder-b", "created"),
        ("dashboard", "dc-a", "created"), ("dashboard", "dc-b", "created"),
        ("dashboard", "dc-c", "created")]
    assert grafana.violations == []
    assert all(r.authorization == f"Bearer {grafana.token}" for r in grafana.requests)

    ds = grafana.datasources[DATASOURCE_UID]
    assert (ds["url"], ds["user"], ds["jsonData"]["dbName"], ds["secureJsonData"]) == \
        ("http://127.0.0.1:8086", "grafana", "dciot", {"password": "influx-pass-42"})
    assert {uid: f["title"] for uid, f in grafana.folders.items()} == \
        {"dc-folder-a": "目录甲", "dc-folder-b": "目录乙"}
    stored = grafana.dashboards["dc-b"]
    assert stored["folderUid"] == "dc-folder-b"
    assert stored["dashboard"]["panels"] == dashboards[1].model["panels"]
    saves = [r.body for r in grafana.writes() if r.path == "/api/dashboards/db"]
    assert all(b["overwrite"] is True and "id" not in b["dashboard"] for b in saves)

    writes_before = len(grafana.writes())
    again = _push(grafana, _board_set(built_factory))
    assert {c.action for c in again} == {"unchanged"} and len(again) == 6
    assert len(grafana.writes()) == writes_before  # nothing written the second time
    assert grafana.violations == []


def test_changed_objects_are_updated_alone(grafana: Any, built_factory: Built) -> None:
    dashboards = _board_set(built_factory)
    _push(grafana, dashboards)
    writes_before = len(grafana.writes())

    changed = copy.deepcopy(dashboards[2].model)
    changed["panels"][1]["title"] = "在线率（新）"
    dashboards[2] = dataclasses.replace(dashboards[2], model=changed)
    dashboards[1] = dataclasses.replace(dashboards[1], folder="目录乙（改名）")
    settings = dataclasses.replace(SETTINGS, url="http://127.0.0.1:8087")
    assert _actions(_push(grafana, dashboards, settings)) == [
        ("datasource", DATASOURCE_UID, "updated"),
        ("folder", "dc-folder-a", "unchanged"), ("folder", "dc-folder-b", "updated"),
        ("dashboard", "dc-a", "unchanged"), ("dashboard", "dc-b", "unchanged"),
        ("dashboard", "dc-c", "updated")]
    assert [(r.method, r.path) for r in grafana.writes()[writes_before:]] == [
        ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}"), ("PUT", "/api/folders/dc-folder-b"),
        ("POST", "/api/dashboards/db")]
    assert grafana.dashboards["dc-c"]["dashboard"]["panels"][1]["title"] == "在线率（新）"
    assert grafana.dashboards["dc-c"]["dashboard"]["version"] == 2
    assert grafana.datasources[DATASOURCE_UID]["url"] == "http://127.0.0.1:8087"
    assert grafana.folders["dc-folder-b"]["title"] == "目录乙（改名）"
    assert grafana.violations == []
    assert {c.action for c in _push(grafana, dashboards, settings)} == {"unchanged"}


def test_dashboard_moved_to_another_folder_is_updated(grafana: Any, built_factory: Built
                                                      ) -> None:
    _push(grafana, [built_factory("dc-a", "dc-folder-a", "甲")])
    changes = _push(grafana, [built_factory("dc-a", "dc-folder-b", "乙")])
    assert ("dashboard", "dc-a", "updated") in _actions(changes)
    assert grafana.dashboards["dc-a"]["folderUid"] == "dc-folder-b"


def test_secret_is_rewritten_only_on_request(grafana: Any, built_factory: Built) -> None:
    dashboards = [built_factory()]
    _push(grafana, dashboards)
    assert _actions(_push(grafana, dashboards))[0][2] == "unchanged"
    new_env = {"INFLUX_PASSWORD": "rotated"}
    changes = push(grafana.url, grafana.token, dashboards, SETTINGS, environ=new_env,
                   update_secret=True)
    assert _actions(changes)[0][2] == "updated"
    assert grafana.datasources[DATASOURCE_UID]["secureJsonData"] == {"password": "rotated"}


def test_bad_token_is_a_clear_error_and_writes_nothing(grafana: Any, built_factory: Built
                                                       ) -> None:
    with pytest.raises(PushError, match="401") as info:
        push(grafana.url, "wrong-token", [built_factory()], SETTINGS, environ=ENV)
    assert "wrong-token" not in str(info.value)
    assert grafana.writes() == [] and grafana.datasources == {}
    assert grafana.violations == []


def test_missing_secret_env_is_refused_before_any_request(grafana: Any,
                                                           built_factory: Built) -> None:
    with pytest.raises(PushError, match="INFLUX_PASSWORD"):
        push(grafana.url, grafana.token, [built_factory()], SETTINGS, environ={})
    assert grafana.requests == []


def test_unreachable_grafana_is_a_clear_error(built_factory: Built) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PushError, match=re.escape(url)):
        push(url, "t", [built_factory()], SETTINGS, environ=ENV, timeout_s=2)
