"""Write Grafana file provisioning for the dashboards: the dashboard JSON files, the InfluxDB data
source and one dashboard provider per folder (`apiVersion: 1`).

Layout under OUTDIR::

    dashboards/<folder_uid>/<uid>.json
    provisioning/datasources/dciot.yaml
    provisioning/dashboards/dciot.yaml

Point Grafana's `paths.provisioning` at OUTDIR/provisioning. Secrets are never written: the
data source's password or token is an environment variable reference (`$NAME`), which Grafana
expands when it reads the file. Output is deterministic (sorted keys, fixed formatting).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dashboards.catalog import DATASOURCE_NAME, DATASOURCE_UID, BuiltDashboard

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROVISIONING_FILE = "dciot.yaml"


@dataclass(frozen=True)
class DatasourceSettings:
    """How Grafana reaches InfluxDB. The secret is named by an environment variable only."""

    url: str = "http://127.0.0.1:8086"
    database: str = "dciot"
    user: str | None = None
    password_env: str | None = None
    """InfluxDB 1.x: environment variable holding the user's password"""
    token_env: str | None = None
    """InfluxDB 2.x/3.x (v1 compatibility): environment variable holding an API token"""
    time_interval: str = "10s"
    http_mode: str = "POST"
    name: str = DATASOURCE_NAME
    uid: str = DATASOURCE_UID

    def __post_init__(self) -> None:
        if self.password_env and self.token_env:
            raise ValueError("password_env and token_env are exclusive")
        for env in (self.password_env, self.token_env):
            if env is not None and not ENV_NAME_RE.match(env):
                raise ValueError(f"not an environment variable name: {env!r}")
        for key in ("url", "database", "user", "name", "uid", "time_interval"):
            value = getattr(self, key)
            if isinstance(value, str) and "$" in value:
                # Grafana expands $NAME in provisioning values: a literal $ would be mangled.
                raise ValueError(f"{key} must not contain '$': {value!r}")

    @property
    def secret_env(self) -> str | None:
        return self.password_env or self.token_env

    def json_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"dbName": self.database, "httpMode": self.http_mode,
                                "timeInterval": self.time_interval, "version": "InfluxQL"}
        if self.token_env:
            data["httpHeaderName1"] = "Authorization"
        return data

    def secure_json_data(self, secret: str) -> dict[str, str]:
        """secureJsonData with `secret` (the value, or for a file the `$NAME` reference)."""
        if self.token_env:
            return {"httpHeaderValue1": f"Token {secret}"}
        if self.password_env:
            return {"password": secret}
        return {}

    def provisioning_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name, "type": "influxdb", "uid": self.uid, "access": "proxy",
            "url": self.url, "isDefault": True, "editable": False, "jsonData": self.json_data(),
        }
        if self.user:
            entry["user"] = self.user
        if self.secret_env:
            entry["secureJsonData"] = self.secure_json_data(f"${self.secret_env}")
        return entry


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    kind: str
    """`dashboard`, `datasources`, `dashboard-providers` or `removed` (a stale dashboard)"""
    uid: str | None = None


def dashboard_json(model: dict[str, Any]) -> str:
    """The file text of one dashboard: sorted keys, 2-space indent, UTF-8, final newline."""
    return json.dumps(model, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=True, default_flow_style=False)


def folders_of(dashboards: Sequence[BuiltDashboard]) -> dict[str, str]:
    """folder_uid → folder title, sorted by uid; one title per folder uid."""
    folders: dict[str, str] = {}
    for d in dashboards:
        if folders.setdefault(d.folder_uid, d.folder) != d.folder:
            raise ValueError(f"folder {d.folder_uid!r} has two titles: "
                             f"{folders[d.folder_uid]!r} and {d.folder!r}")
    return dict(sorted(folders.items()))


def providers(dashboards: Sequence[BuiltDashboard], dashboards_path: str,
              update_interval_s: int = 30) -> dict[str, Any]:
    """The dashboard provider file: one file provider per folder."""
    return {"apiVersion": 1, "providers": [
        {"name": folder_uid, "orgId": 1, "folder": title, "folderUid": folder_uid,
         "type": "file", "disableDeletion": True, "allowUiUpdates": False,
         "updateIntervalSeconds": update_interval_s,
         "options": {"path": f"{dashboards_path.rstrip('/')}/{folder_uid}",
                     "foldersFromFilesStructure": False}}
        for folder_uid, title in folders_of(dashboards).items()
    ]}


def _check(dashboards: Sequence[BuiltDashboard]) -> None:
    seen: set[str] = set()
    for d in dashboards:
        if d.model.get("uid") != d.uid:
            raise ValueError(f"dashboard {d.uid!r}: model uid is {d.model.get('uid')!r}")
        if d.uid in seen:
            raise ValueError(f"dashboard uid {d.uid!r} appears twice")
        seen.add(d.uid)
        for part in (d.uid, d.folder_uid):
            if not re.match(r"^[A-Za-z0-9_-]+$", part):
                raise ValueError(f"not usable as a file name: {part!r}")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_build(outdir: Path, dashboards: Sequence[BuiltDashboard],
                datasource: DatasourceSettings, *, dashboards_path: str | None = None,
                update_interval_s: int = 30) -> list[WrittenFile]:
    """Write the dashboards and the provisioning files; return every file written or removed.

    `dashboards_path` is where Grafana sees OUTDIR/dashboards (e.g. a container mount); it
    defaults to that directory's absolute path. Dashboard JSON files under OUTDIR/dashboards
    that no longer belong to a dashboard are removed, so Grafana drops them too.
    """
    _check(dashboards)
    outdir = Path(outdir)
    dash_dir = outdir / "dashboards"
    written: list[WrittenFile] = []
    keep: set[Path] = set()
    for d in sorted(dashboards, key=lambda d: (d.folder_uid, d.uid)):
        path = dash_dir / d.folder_uid / f"{d.uid}.json"
        _write(path, dashboard_json(dict(d.model)))
        keep.add(path.resolve())
        written.append(WrittenFile(path, "dashboard", d.uid))
    if dash_dir.is_dir():
        for stale in sorted(dash_dir.glob("*/*.json")):
            if stale.resolve() not in keep:
                stale.unlink()
                written.append(WrittenFile(stale, "removed"))
    ds_path = outdir / "provisioning" / "datasources" / PROVISIONING_FILE
    _write(ds_path, _yaml({"apiVersion": 1, "datasources": [datasource.provisioning_entry()]}))
    written.append(WrittenFile(ds_path, "datasources", datasource.uid))
    provider_path = outdir / "provisioning" / "dashboards" / PROVISIONING_FILE
    path_for_grafana = dashboards_path or str(dash_dir.resolve())
    _write(provider_path, _yaml(providers(dashboards, path_for_grafana, update_interval_s)))
    written.append(WrittenFile(provider_path, "dashboard-providers"))
    return written
