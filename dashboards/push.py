"""Push the data source, the folders and the dashboards to a running Grafana over its HTTP API
(grafana-client), writing only what differs.

For each object it first reads what Grafana has (`GET /api/datasources/uid/:uid`,
`GET /api/folders/:uid`, `GET /api/dashboards/uid/:uid`) and then creates it
(`POST /api/datasources`, `POST /api/folders`, `POST /api/dashboards/db`), updates it
(`PUT /api/datasources/uid/:uid`, `PUT /api/folders/:uid`, `POST /api/dashboards/db` with
`overwrite`), or leaves it alone and reports it "unchanged". A second push of the same build
therefore writes nothing.

The data source's secret (InfluxDB password or token) is read from the environment variable the
settings name; Grafana never returns it, so a changed secret alone is written only with
`update_secret=True`. The Grafana token is used for the Authorization header and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaUnauthorizedError,
)

from dashboards.catalog import BuiltDashboard
from dashboards.provisioning import DatasourceSettings

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
# Fields Grafana adds or bumps on every save: not part of what we compare.
_DASHBOARD_VOLATILE = ("id", "version")
_DATASOURCE_FIELDS = ("name", "type", "access", "url", "user", "basicAuth", "isDefault",
                      "jsonData")


class PushError(RuntimeError):
    """Grafana refused a request or cannot be reached (message for the operator)."""


@dataclass(frozen=True)
class Change:
    kind: str
    """`datasource`, `folder` or `dashboard`"""
    uid: str
    title: str
    action: str
    """`created`, `updated` or `unchanged`"""


def datasource_payload(settings: DatasourceSettings, secret: str | None) -> dict[str, Any]:
    """The body of POST /api/datasources and PUT /api/datasources/uid/:uid."""
    body: dict[str, Any] = {
        "uid": settings.uid, "name": settings.name, "type": "influxdb", "access": "proxy",
        "url": settings.url, "user": settings.user or "", "basicAuth": False,
        "isDefault": True, "jsonData": settings.json_data(),
    }
    if secret is not None:
        body["secureJsonData"] = settings.secure_json_data(secret)
    return body


def _secret(settings: DatasourceSettings, environ: Mapping[str, str]) -> str | None:
    if settings.secret_env is None:
        return None
    value = environ.get(settings.secret_env)
    if not value:
        raise PushError(f"environment variable {settings.secret_env} (InfluxDB password or token) "
                        "is not set")
    return value


def _normalised_dashboard(model: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in _DASHBOARD_VOLATILE}


class _Pusher:
    def __init__(self, api: GrafanaApi) -> None:
        self.api = api

    def _get(self, call: Any, *args: Any) -> Any | None:
        """GET through grafana-client; None when Grafana answers 404."""
        try:
            return call(*args)
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                return None
            raise

    def datasource(self, settings: DatasourceSettings, secret: str | None,
                   update_secret: bool) -> Change:
        desired = datasource_payload(settings, secret)
        existing = self._get(self.api.datasource.get_datasource_by_uid, settings.uid)
        if existing is None:
            self.api.datasource.create_datasource(desired)
            return Change("datasource", settings.uid, settings.name, CREATED)
        same = all(existing.get(k) == desired[k] for k in _DATASOURCE_FIELDS)
        secret_fields = set(desired.get("secureJsonData", {}))
        stored = {k for k, v in (existing.get("secureJsonFields") or {}).items() if v}
        if same and secret_fields <= stored and not (update_secret and secret_fields):
            return Change("datasource", settings.uid, settings.name, UNCHANGED)
        self.api.datasource.update_datasource_by_uid(settings.uid, desired)
        return Change("datasource", settings.uid, settings.name, UPDATED)

    def folder(self, uid: str, title: str) -> Change:
        existing = self._get(self.api.folder.get_folder, uid)
        if existing is None:
            self.api.folder.create_folder(title, uid=uid)
            return Change("folder", uid, title, CREATED)
        if existing.get("title") == title:
            return Change("folder", uid, title, UNCHANGED)
        self.api.folder.update_folder(uid, title=title, overwrite=True)
        return Change("folder", uid, title, UPDATED)

    def dashboard(self, d: BuiltDashboard) -> Change:
        desired = _normalised_dashboard(d.model)
        existing = self._get(self.api.dashboard.get_dashboard, d.uid)
        if existing is not None:
            current = _normalised_dashboard(existing.get("dashboard") or {})
            folder = (existing.get("meta") or {}).get("folderUid")
            if current == desired and folder == d.folder_uid:
                return Change("dashboard", d.uid, d.title, UNCHANGED)
        self.api.dashboard.update_dashboard({
            "dashboard": desired, "folderUid": d.folder_uid, "overwrite": True,
            "message": "dciot dashboards push",
        })
        return Change("dashboard", d.uid, d.title, CREATED if existing is None else UPDATED)


def push(url: str, token: str, dashboards: Sequence[BuiltDashboard],
         datasource_settings: DatasourceSettings, *, update_secret: bool = False,
         environ: Mapping[str, str] | None = None, timeout_s: float = 10.0) -> list[Change]:
    """Bring Grafana at `url` in line with the build; return one Change per object.

    Order: the data source, then each folder (sorted by uid), then each dashboard.
    """
    if not token:
        raise PushError("no Grafana token")
    secret = _secret(datasource_settings, os.environ if environ is None else environ)
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    pusher = _Pusher(api)
    folders: dict[str, str] = {}
    for d in dashboards:
        folders.setdefault(d.folder_uid, d.folder)
    try:
        changes = [pusher.datasource(datasource_settings, secret, update_secret)]
        changes += [pusher.folder(uid, title) for uid, title in sorted(folders.items())]
        changes += [pusher.dashboard(d) for d in dashboards]
    except GrafanaUnauthorizedError as exc:
        raise PushError(f"Grafana rejected the token (HTTP 401): {_message(exc)}") from None
    except GrafanaException as exc:
        status = f"HTTP {exc.status_code}" if exc.status_code else "unreachable"
        raise PushError(f"Grafana request failed ({status}): {_message(exc)}") from None
    except niquests.exceptions.RequestException as exc:
        raise PushError(f"cannot reach Grafana {url}: {exc}") from None
    return changes


def _message(exc: GrafanaException) -> str:
    response = exc.response
    if isinstance(response, Mapping) and response.get("message"):
        return str(response["message"])
    return str(exc.message)
