"""write_build: dashboard files per folder, data source and provider YAML, no secret literal,
byte-for-byte deterministic."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from dashboards.catalog import DATASOURCE_NAME, DATASOURCE_UID, BuiltDashboard
from dashboards.provisioning import DatasourceSettings, write_build

Built = Callable[..., BuiltDashboard]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_layout_and_provisioning_keys(tmp_path: Path, built_factory: Built) -> None:
    dashboards = [built_factory("dc-a", "dc-folder-a", "目录甲"),
                  built_factory("dc-b", "dc-folder-b", "目录乙"),
                  built_factory("dc-c", "dc-folder-a", "目录甲")]
    settings = DatasourceSettings(url="http://127.0.0.1:8086", database="dciot", user="grafana",
                                  password_env="INFLUX_PASSWORD")
    written = write_build(tmp_path, dashboards, settings)

    assert sorted(str(w.path.relative_to(tmp_path)) for w in written) == [
        "dashboards/dc-folder-a/dc-a.json", "dashboards/dc-folder-a/dc-c.json",
        "dashboards/dc-folder-b/dc-b.json",
        "provisioning/dashboards/dciot.yaml", "provisioning/datasources/dciot.yaml"]
    model = json.loads((tmp_path / "dashboards/dc-folder-b/dc-b.json").read_text("utf-8"))
    assert model == dashboards[1].model and "id" not in model

    ds_file = yaml.safe_load((tmp_path / "provisioning/datasources/dciot.yaml").read_text())
    assert ds_file["apiVersion"] == 1
    [ds] = ds_file["datasources"]
    assert ds | {"jsonData": None, "secureJsonData": None} == {
        "name": DATASOURCE_NAME, "type": "influxdb", "uid": DATASOURCE_UID, "access": "proxy",
        "url": "http://127.0.0.1:8086", "user": "grafana", "isDefault": True,
        "editable": False, "jsonData": None, "secureJsonData": None}
    assert ds["jsonData"] == {"version": "InfluxQL", "dbName": "dciot", "httpMode": "POST",
                              "timeInterval": "10s"}
    assert ds["secureJsonData"] == {"password": "$INFLUX_PASSWORD"}

    providers = yaml.safe_load((tmp_path / "provisioning/dashboards/dciot.yaml").read_text())
    assert providers["apiVersion"] == 1
    by_folder = {p["folderUid"]: p for p in providers["providers"]}
    assert set(by_folder) == {"dc-folder-a", "dc-folder-b"}
    a = by_folder["dc-folder-a"]
    assert (a["folder"], a["type"], a["disableDeletion"], a["allowUiUpdates"], a["orgId"]) == \
        ("目录甲", "file", True, False, 1)
    assert a["updateIntervalSeconds"] > 0
    assert sorted(p.name for p in Path(a["options"]["path"]).iterdir()) == \
        ["dc-a.json", "dc-c.json"]
    assert len({p["name"] for p in providers["providers"]}) == 2


def test_token_is_an_env_reference_in_a_header(tmp_path: Path, built_factory: Built) -> None:
    write_build(tmp_path, [built_factory()], DatasourceSettings(token_env="INFLUX_TOKEN"))
    [ds] = yaml.safe_load((tmp_path / "provisioning/datasources/dciot.yaml").read_text())[
        "datasources"]
    assert ds["jsonData"]["httpHeaderName1"] == "Authorization"
    assert ds["secureJsonData"] == {"httpHeaderValue1": "Token $INFLUX_TOKEN"}


def test_no_secret_without_an_env_name(tmp_path: Path, built_factory: Built,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLUX_PASSWORD", "s3cret-value")
    write_build(tmp_path, [built_factory()], DatasourceSettings(password_env="INFLUX_PASSWORD"))
    text = "".join(p.read_text("utf-8") for p in tmp_path.rglob("*.yaml"))
    assert "s3cret-value" not in text and "$INFLUX_PASSWORD" in text


@pytest.mark.parametrize("kwargs", [
    {"password_env": "A", "token_env": "B"}, {"password_env": "not a name"},
    {"database": "db$x"},
])
def test_bad_settings_are_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        DatasourceSettings(**kwargs)


def test_output_is_deterministic_and_stale_files_go(tmp_path: Path,
                                                    built_factory: Built) -> None:
    dashboards = [built_factory("dc-a"), built_factory("dc-b", "dc-folder-b", "乙")]
    write_build(tmp_path / "one", dashboards, DatasourceSettings(), dashboards_path="/g/d")
    write_build(tmp_path / "two", list(reversed(dashboards)), DatasourceSettings(),
                dashboards_path="/g/d")
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")

    written = write_build(tmp_path / "one", dashboards[:1], DatasourceSettings(),
                          dashboards_path="/g/d")
    assert [(w.kind, w.path.name) for w in written if w.kind == "removed"] == \
        [("removed", "dc-b.json")]
    assert not (tmp_path / "one/dashboards/dc-folder-b/dc-b.json").exists()
    providers = yaml.safe_load((tmp_path / "one/provisioning/dashboards/dciot.yaml").read_text())
    assert [p["options"]["path"] for p in providers["providers"]] == ["/g/d/dc-folder-a"]


def test_zero_dashboards_still_write_provisioning(tmp_path: Path) -> None:
    write_build(tmp_path, [], DatasourceSettings())
    providers = yaml.safe_load((tmp_path / "provisioning/dashboards/dciot.yaml").read_text())
    assert providers == {"apiVersion": 1, "providers": []}
    assert (tmp_path / "provisioning/datasources/dciot.yaml").is_file()


def test_inconsistent_input_is_refused(tmp_path: Path, built_factory: Built) -> None:
    with pytest.raises(ValueError, match="two titles"):
        write_build(tmp_path, [built_factory("dc-a", "f", "甲"), built_factory("dc-b", "f", "乙")],
                    DatasourceSettings())
    with pytest.raises(ValueError, match="twice"):
        write_build(tmp_path, [built_factory("dc-a"), built_factory("dc-a")],
                    DatasourceSettings())
