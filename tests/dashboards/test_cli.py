"""`dciot dashboards ...` with typer's CliRunner, on whatever catalog.build_all returns."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dashboards.catalog import DATASOURCE_UID, BuiltDashboard, build_all
from dashboards.provisioning import DatasourceSettings
from dciot.cli.dashboards import LintFailed, build_into
from dciot.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def catalog() -> list[BuiltDashboard]:
    return build_all()


def test_build_writes_every_dashboard_and_the_provisioning(tmp_path: Path,
                                                           catalog: list[BuiltDashboard]
                                                           ) -> None:
    out = tmp_path / "grafana"
    result = runner.invoke(app, ["dashboards", "build", str(out), "--influx-url",
                                 "http://127.0.0.1:8086", "--database", "dciot",
                                 "--user", "grafana", "--password-env", "INFLUX_PASSWORD"])
    assert result.exit_code == 0, result.output

    files = sorted((out / "dashboards").glob("*/*.json"))
    assert len(files) == len(catalog)
    by_uid = {d.uid: d for d in catalog}
    for path in files:
        model = json.loads(path.read_text("utf-8"))
        built = by_uid[model["uid"]]
        assert model == built.model
        assert path == out / "dashboards" / built.folder_uid / f"{built.uid}.json"

    [ds] = yaml.safe_load((out / "provisioning/datasources/dciot.yaml").read_text())[
        "datasources"]
    assert (ds["uid"], ds["type"], ds["access"], ds["user"]) == \
        (DATASOURCE_UID, "influxdb", "proxy", "grafana")
    assert ds["jsonData"]["version"] == "InfluxQL" and ds["jsonData"]["dbName"] == "dciot"
    assert ds["secureJsonData"] == {"password": "$INFLUX_PASSWORD"}

    providers = yaml.safe_load((out / "provisioning/dashboards/dciot.yaml").read_text())
    assert providers["apiVersion"] == 1
    folders = {d.folder_uid: d.folder for d in catalog}
    assert {p["folderUid"]: p["folder"] for p in providers["providers"]} == folders
    for p in providers["providers"]:
        assert p["type"] == "file" and p["allowUiUpdates"] is False
        listed = {f.stem for f in Path(p["options"]["path"]).glob("*.json")}
        assert listed == {d.uid for d in catalog if d.folder_uid == p["folderUid"]}


def test_lint_command_passes_on_the_catalog() -> None:
    result = runner.invoke(app, ["dashboards", "lint"])
    assert result.exit_code == 0, result.output


def test_build_refuses_dashboards_with_lint_problems(
        tmp_path: Path, built_factory: Callable[..., BuiltDashboard]) -> None:
    bad = built_factory()
    del bad.model["panels"][1]["fieldConfig"]["defaults"]["unit"]
    with pytest.raises(LintFailed) as info:
        build_into(tmp_path, [built_factory("dc-ok"), bad], DatasourceSettings())
    assert [p.code for p in info.value.problems] == ["panel-unit-missing"]
    assert list(tmp_path.iterdir()) == []

    written = build_into(tmp_path, [built_factory("dc-ok")], DatasourceSettings())
    assert (tmp_path / "dashboards/dc-folder-a/dc-ok.json") in [w.path for w in written]


def test_build_rejects_exclusive_secret_options(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dashboards", "build", str(tmp_path / "o"),
                                 "--password-env", "A", "--token-env", "B"])
    assert result.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_push_command_twice(grafana: Any, catalog: list[BuiltDashboard]) -> None:
    args = ["dashboards", "push", "--url", grafana.url, "--token-env", "TEST_GRAFANA_TOKEN"]
    env = {"TEST_GRAFANA_TOKEN": grafana.token}
    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    assert "created" in first.output and grafana.token not in first.output
    assert set(grafana.dashboards) == {d.uid for d in catalog}
    second = runner.invoke(app, args, env=env)
    assert second.exit_code == 0, second.output
    assert "created" not in second.output and "updated" not in second.output
    assert grafana.violations == []


def test_push_command_with_a_bad_token(grafana: Any) -> None:
    result = runner.invoke(app, ["dashboards", "push", "--url", grafana.url],
                           env={"GRAFANA_TOKEN": "not-the-token"})
    assert result.exit_code == 1
    assert "401" in result.output and "not-the-token" not in result.output


def test_push_command_without_a_token(grafana: Any) -> None:
    result = runner.invoke(app, ["dashboards", "push", "--url", grafana.url,
                                 "--token-env", "UNSET_TOKEN_VARIABLE"], env={})
    assert result.exit_code == 2 and "UNSET_TOKEN_VARIABLE" in result.output
    assert grafana.requests == []


def test_verify_command_refuses_a_bad_time() -> None:
    result = runner.invoke(app, ["dashboards", "verify", "--influx-url", "http://127.0.0.1:9",
                                 "--database", "x", "--from", "yesterday"])
    assert result.exit_code == 2 and "yesterday" in result.output
