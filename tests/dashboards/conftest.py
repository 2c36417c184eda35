"""Shared fixtures for the dashboard tests: small hand-built dashboard JSON and a stand-in
Grafana (a real HTTP server on 127.0.0.1) for `push`.

The stand-in implements the part of Grafana's documented HTTP API that push uses
(docs/sources/developers/http_api/{data_source,folder,dashboard}.md in grafana/grafana):
GET/POST/PUT data sources by uid, GET/POST/PUT folders, GET dashboards by uid and
POST /api/dashboards/db. It answers with the documented status codes and JSON shapes, records
every request, and records a *violation* whenever a request breaks the documented contract
(missing Bearer token, wrong content type, a body without its required fields, a dashboard
with an id, an unknown route). Tests assert there are none. It is not Grafana: it does not
migrate dashboards, check permissions or validate panels.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards.catalog import BuiltDashboard

DS = {"type": "influxdb", "uid": "${datasource}"}


# -- hand-built dashboards ----------------------------------------------------------------------

def _variables() -> list[dict[str, Any]]:
    return [
        {"name": "datasource", "type": "datasource", "query": "influxdb"},
        {"name": "domain", "type": "query", "datasource": DS, "refresh": 2, "multi": True,
         "includeAll": True, "allValue": ".*",
         "query": 'SHOW TAG VALUES FROM "device_health" WITH KEY = "domain"'},
        {"name": "site", "type": "query", "datasource": DS, "refresh": 2, "multi": True,
         "includeAll": True, "allValue": ".*",
         "query": 'SHOW TAG VALUES FROM "device_health" WITH KEY = "site" '
                  'WHERE "domain" =~ /^$domain$/'},
    ]


def make_dashboard(uid: str = "dc-test", title: str = "测试仪表盘",
                   targets: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A small dashboard that passes lint: data source + chained variables, a row, a stat
    panel, a text panel with a link, and a collapsed row holding a time series panel."""
    targets = targets if targets is not None else [{
        "refId": "A", "datasource": DS, "rawQuery": True, "resultFormat": "time_series",
        "query": 'SELECT mean("online") FROM "device_health" WHERE $timeFilter AND '
                 '"domain" =~ /^$domain$/ AND "site" =~ /^$site$/ GROUP BY time($__interval)',
    }]
    model: dict[str, Any] = {
        "uid": uid, "title": title, "schemaVersion": 42, "tags": ["dciot"],
        "templating": {"list": _variables()},
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "enable": True, "hide": True, "name": "Annotations & Alerts"},
        ]},
        "panels": [
            {"id": 1, "type": "row", "title": "概览", "collapsed": False, "panels": [],
             "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}},
            {"id": 2, "type": "stat", "title": "在线率", "description": "设备在线的比例",
             "datasource": DS, "fieldConfig": {"defaults": {"unit": "percentunit"},
                                               "overrides": []},
             "targets": targets, "gridPos": {"h": 6, "w": 12, "x": 0, "y": 1}},
            {"id": 3, "type": "text", "title": "说明", "description": "看板说明",
             "options": {"mode": "markdown", "content": f"见 [本看板](/d/{uid})"},
             "gridPos": {"h": 6, "w": 12, "x": 12, "y": 1}},
            {"id": 4, "type": "row", "title": "明细", "collapsed": True,
             "gridPos": {"h": 1, "w": 24, "x": 0, "y": 7},
             "panels": [
                 {"id": 5, "type": "timeseries", "title": "在线", "description": "在线状态",
                  "datasource": DS, "fieldConfig": {"defaults": {"unit": "bool_on_off"},
                                                    "overrides": []},
                  "targets": [{"refId": "A", "datasource": DS, "rawQuery": True,
                               "query": 'SELECT last("online") FROM "device_health" WHERE '
                                        '$timeFilter AND "site" =~ /^$site$/ '
                                        'GROUP BY time($__interval), "device"'}],
                  "gridPos": {"h": 8, "w": 24, "x": 0, "y": 8}},
             ]},
        ],
    }
    model.update(extra)
    return model


@pytest.fixture
def dashboard_factory() -> Callable[..., dict[str, Any]]:
    """`dashboard_factory(uid=..., title=..., targets=[...], **extra)`: a lint-clean dict."""
    return make_dashboard


@pytest.fixture
def built_factory() -> Callable[..., BuiltDashboard]:
    """`built_factory(uid, folder_uid="dc-test-folder", folder="测试", **model_kw)`."""

    def make(uid: str = "dc-test", folder_uid: str = "dc-folder-a", folder: str = "测试目录",
             **kw: Any) -> BuiltDashboard:
        model = make_dashboard(uid=uid, **kw)
        return BuiltDashboard(uid=uid, title=str(model["title"]), folder=folder,
                              folder_uid=folder_uid, model=model)

    return make


# -- the stand-in Grafana -----------------------------------------------------------------------

@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any


class StandInGrafana:
    """State and request handling of the stand-in; see the module docstring."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- what tests look at
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    # -- serving
    def start(self) -> None:
        grafana = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = grafana.handle(self.command, self.path, dict(self.headers),
                                                 raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes
               ) -> tuple[int, Any]:
        with self._lock:
            body: Any = None
            if raw:
                if not headers.get("Content-Type", "").startswith("application/json"):
                    self.violations.append(f"{method} {path}: body is not application/json")
                try:
                    body = json.loads(raw)
                except ValueError:
                    self.violations.append(f"{method} {path}: body is not JSON")
                    return 400, {"message": "bad request data"}
            auth = headers.get("Authorization")
            self.requests.append(Recorded(method, path, auth, body))
            if auth is None or not auth.startswith("Bearer "):
                self.violations.append(f"{method} {path}: no Authorization: Bearer header")
                return 401, {"message": "Unauthorized"}
            if auth != f"Bearer {self.token}":
                return 401, {"message": "invalid API key"}
            return self._route(method, path.split("?")[0], body)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", r"/api/datasources/uid/([^/]+)", self._get_datasource),
            ("POST", r"/api/datasources", self._create_datasource),
            ("PUT", r"/api/datasources/uid/([^/]+)", self._update_datasource),
            ("GET", r"/api/folders/([^/]+)", self._get_folder),
            ("POST", r"/api/folders", self._create_folder),
            ("PUT", r"/api/folders/([^/]+)", self._update_folder),
            ("GET", r"/api/dashboards/uid/([^/]+)", self._get_dashboard),
            ("POST", r"/api/dashboards/db", self._save_dashboard),
        ]
        for route_method, pattern, handler in routes:
            m = re.fullmatch(pattern, path)
            if m and method == route_method:
                return handler(*m.groups(), body) if method != "GET" else handler(*m.groups())
        self.violations.append(f"{method} {path}: not an endpoint push should use")
        return 404, {"message": "Not found"}

    def _require(self, where: str, body: Any, *fields: str) -> bool:
        if not isinstance(body, dict):
            self.violations.append(f"{where}: body is not a JSON object")
            return False
        missing = [f for f in fields if body.get(f) in (None, "")]
        if missing:
            self.violations.append(f"{where}: missing {', '.join(missing)}")
        return not missing

    # -- data sources (data_source.md)
    def _datasource_view(self, ds: dict[str, Any]) -> dict[str, Any]:
        view = {"typeLogoUrl": "", "password": "", "database": "", "basicAuthUser": "",
                "withCredentials": False, "readOnly": False, "user": "", "basicAuth": False,
                "isDefault": False, "jsonData": {}}
        view.update({k: v for k, v in ds.items() if k != "secureJsonData"})
        view["secureJsonFields"] = {k: True for k in ds.get("secureJsonData", {})}
        return view

    def _get_datasource(self, uid: str) -> tuple[int, Any]:
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        return 200, self._datasource_view(self.datasources[uid])

    def _check_datasource_body(self, where: str, body: Any) -> bool:
        if not self._require(where, body, "name", "type", "access", "url"):
            return False
        json_data = body.get("jsonData") or {}
        for key in ("version", "dbName", "httpMode"):
            if key not in json_data:
                self.violations.append(f"{where}: jsonData.{key} missing")
        if body.get("type") != "influxdb" or body.get("access") != "proxy":
            self.violations.append(f"{where}: not an influxdb proxy data source")
        return True

    def _create_datasource(self, body: Any) -> tuple[int, Any]:
        if not self._check_datasource_body("POST /api/datasources", body):
            return 400, {"message": "bad request data"}
        uid = body.get("uid")
        if not uid:
            self.violations.append("POST /api/datasources: no uid (it would be random)")
        if uid in self.datasources or any(d["name"] == body["name"]
                                          for d in self.datasources.values()):
            return 409, {"message": "data source with the same name already exists"}
        ds = {**body, "id": next(self._ids), "orgId": 1, "version": 1}
        self.datasources[uid] = ds
        view = self._datasource_view(ds)
        return 200, {"datasource": view, "id": ds["id"], "message": "Datasource added",
                     "name": ds["name"]}

    def _update_datasource(self, uid: str, body: Any) -> tuple[int, Any]:
        where = f"PUT /api/datasources/uid/{uid}"
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        if not self._check_datasource_body(where, body):
            return 400, {"message": "bad request data"}
        old = self.datasources[uid]
        secure = {**old.get("secureJsonData", {}), **(body.get("secureJsonData") or {})}
        ds = {**body, "uid": uid, "id": old["id"], "orgId": 1, "version": old["version"] + 1,
              "secureJsonData": secure}
        self.datasources[uid] = ds
        return 200, {"datasource": self._datasource_view(ds), "id": ds["id"],
                     "message": "Datasource updated", "name": ds["name"]}

    # -- folders (folder.md)
    def _folder_view(self, folder: dict[str, Any]) -> dict[str, Any]:
        return {**folder, "url": f"/dashboards/f/{folder['uid']}/", "hasAcl": False,
                "canSave": True, "canEdit": True, "canAdmin": True}

    def _get_folder(self, uid: str) -> tuple[int, Any]:
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        return 200, self._folder_view(self.folders[uid])

    def _create_folder(self, body: Any) -> tuple[int, Any]:
        if not self._require("POST /api/folders", body, "uid", "title"):
            return 400, {"message": "bad request data"}
        if body["uid"] in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        folder = {"id": next(self._ids), "uid": body["uid"], "title": body["title"],
                  "version": 1}
        self.folders[body["uid"]] = folder
        return 200, self._folder_view(folder)

    def _update_folder(self, uid: str, body: Any) -> tuple[int, Any]:
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        if not self._require(f"PUT /api/folders/{uid}", body, "title"):
            return 400, {"message": "bad request data"}
        folder = self.folders[uid]
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            return 412, {"message": "The folder has been changed by someone else",
                         "status": "version-mismatch"}
        folder.update(title=body["title"], version=folder["version"] + 1)
        return 200, self._folder_view(folder)

    # -- dashboards (dashboard.md)
    def _get_dashboard(self, uid: str) -> tuple[int, Any]:
        if uid not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        stored = self.dashboards[uid]
        folder = self.folders[stored["folderUid"]]
        return 200, {"dashboard": stored["dashboard"], "meta": {
            "isStarred": False, "url": f"/d/{uid}/", "slug": "", "folderId": folder["id"],
            "folderUid": folder["uid"], "folderTitle": folder["title"],
            "version": stored["dashboard"]["version"], "provisioned": False}}

    def _save_dashboard(self, body: Any) -> tuple[int, Any]:
        where = "POST /api/dashboards/db"
        if not self._require(where, body, "dashboard", "folderUid") or \
                not isinstance(body["dashboard"], dict):
            return 400, {"message": "bad request data"}
        if not isinstance(body.get("overwrite"), bool):
            self.violations.append(f"{where}: overwrite is not a boolean")
        dashboard = body["dashboard"]
        uid = dashboard.get("uid")
        if not uid:
            self.violations.append(f"{where}: dashboard without uid (it would be random)")
            return 400, {"message": "dashboard uid missing"}
        if dashboard.get("id") is not None:
            self.violations.append(f"{where}: dashboard.id set (must be absent or null)")
        if not dashboard.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        if body["folderUid"] not in self.folders:
            return 400, {"message": "folder not found"}
        old = self.dashboards.get(uid)
        if old is not None and not body.get("overwrite"):
            return 412, {"message": "A dashboard with the same uid already exists",
                         "status": "name-exists"}
        dash_id = old["dashboard"]["id"] if old else next(self._ids)
        version = old["dashboard"]["version"] + 1 if old else 1
        stored = {**dashboard, "id": dash_id, "version": version}
        self.dashboards[uid] = {"dashboard": stored, "folderUid": body["folderUid"]}
        return 200, {"id": dash_id, "uid": uid, "url": f"/d/{uid}/", "status": "success",
                     "version": version, "slug": ""}


@pytest.fixture
def grafana() -> Iterator[StandInGrafana]:
    """A stand-in Grafana on a free loopback port accepting the token `grafana.token`."""
    server = StandInGrafana(token="stand-in-token-0123456789")
    server.start()
    try:
        yield server
    finally:
        server.stop()
