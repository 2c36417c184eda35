"""Checks on dashboard JSON in the spirit of Grafana's dashboard linter
(grafana/dashboard-linter): every problem names the dashboard, the panel and what is wrong.

They work on plain dashboard JSON dicts, whatever built them. `lint_all` runs the checks of one
dashboard on each and the checks across the set (duplicate uids, links to other dashboards).
Messages are short English text; `code` is stable for tests and scripts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.grafana_expand import (
    BUILTIN_VARIABLES,
    UNSUPPORTED_VARIABLES,
    find_variables,
    interval_to_ms,
)

DATASOURCE_VARIABLE = "datasource"
DATASOURCE_REF = "${datasource}"
REFRESH_ON_TIME_RANGE_CHANGE = 2
UID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
DASHBOARD_LINK_RE = re.compile(r"/d/([A-Za-z0-9_-]+)")
UNIT_EXEMPT_TYPES = frozenset({"text", "row"})
NO_QUERY_TYPES = frozenset({"text", "row", "dashlist", "news", "alertlist", "annolist"})


@dataclass(frozen=True)
class Problem:
    """One lint finding."""

    dashboard_uid: str
    panel: str | None
    """`#id title` of the panel, `variable name`, `annotation name`, or None for the dashboard
    itself"""
    code: str
    message: str

    def __str__(self) -> str:
        where = f" [{self.panel}]" if self.panel else ""
        return f"{self.dashboard_uid}{where}: {self.message} ({self.code})"


def _model(dashboard: Any) -> Mapping[str, Any]:
    """Accept a dashboard dict or anything with a `.model` dict (catalog.BuiltDashboard)."""
    model = getattr(dashboard, "model", dashboard)
    if not isinstance(model, Mapping):
        raise TypeError(f"not a dashboard model: {type(model).__name__}")
    return model


def iter_panels(model: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, rows included, and the panels nested in (collapsed) rows."""
    for panel in model.get("panels") or []:
        if not isinstance(panel, Mapping):
            continue
        yield panel
        for nested in panel.get("panels") or []:
            if isinstance(nested, Mapping):
                yield nested


def panel_label(panel: Mapping[str, Any]) -> str:
    return f"#{panel.get('id', '?')} {panel.get('title') or '(untitled)'}"


def variables_of(model: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    templating = model.get("templating") or {}
    return [v for v in templating.get("list") or [] if isinstance(v, Mapping)]


def variable_query(variable: Mapping[str, Any]) -> str:
    """A query variable's query text (a string, or `{query: ...}` in newer models)."""
    query = variable.get("query")
    if isinstance(query, Mapping):
        query = query.get("query")
    return query if isinstance(query, str) else ""


def annotation_query(annotation: Mapping[str, Any]) -> str | None:
    """An InfluxDB annotation's InfluxQL (`query`, or `target.query`), None if it has none."""
    target = annotation.get("target")
    if isinstance(target, Mapping) and isinstance(target.get("query"), str):
        return target["query"]
    query = annotation.get("query")
    return query if isinstance(query, str) else None


def is_builtin_annotation(annotation: Mapping[str, Any]) -> bool:
    datasource = annotation.get("datasource")
    grafana_ds = isinstance(datasource, Mapping) and datasource.get("type") == "grafana"
    return bool(annotation.get("builtIn")) or grafana_ds or datasource == "-- Grafana --"


def uses_datasource_variable(datasource: object) -> bool:
    if isinstance(datasource, str):
        return datasource in (DATASOURCE_REF, f"${DATASOURCE_VARIABLE}")
    if isinstance(datasource, Mapping):
        return datasource.get("uid") in (DATASOURCE_REF, f"${DATASOURCE_VARIABLE}")
    return False


class _Checker:
    def __init__(self, model: Mapping[str, Any]) -> None:
        self.model = model
        self.uid = str(model.get("uid") or "(no uid)")
        self.problems: list[Problem] = []

    def add(self, panel: str | None, code: str, message: str) -> None:
        self.problems.append(Problem(self.uid, panel, code, message))

    def run(self) -> list[Problem]:
        self.check_identity()
        defined = self.check_variables()
        self.check_panels(defined)
        self.check_annotations(defined)
        return self.problems

    def check_identity(self) -> None:
        uid = self.model.get("uid")
        if not isinstance(uid, str) or not uid:
            self.add(None, "uid-missing", "dashboard has no uid")
        elif not UID_RE.match(uid):
            self.add(None, "uid-invalid", f"uid {uid!r} must be 1-40 letters, digits, - or _")
        if self.model.get("id") is not None:
            self.add(None, "id-set", "dashboard sets id: leave it unset (Grafana assigns it)")
        if not self.model.get("title"):
            self.add(None, "dashboard-title-missing", "dashboard has no title")

    def check_variables(self) -> set[str]:
        """Variable checks; returns the names defined (in order: a query may only use the
        variables before it)."""
        variables = variables_of(self.model)
        if not any(v.get("type") == "datasource" and v.get("name") == DATASOURCE_VARIABLE
                   for v in variables):
            self.add(None, "no-datasource-variable",
                     f"no data source variable ${DATASOURCE_VARIABLE} (type datasource)")
        defined: set[str] = set()
        names = [str(v.get("name")) for v in variables]
        for variable in variables:
            name = str(variable.get("name"))
            where = f"variable {name}"
            if variable.get("type") == "query":
                if variable.get("refresh") != REFRESH_ON_TIME_RANGE_CHANGE:
                    self.add(where, "variable-refresh",
                             "query variable must refresh on time range change (refresh: 2)")
                if not uses_datasource_variable(variable.get("datasource")):
                    self.add(where, "variable-datasource",
                             f"query variable data source must be {DATASOURCE_REF}")
                query = variable_query(variable)
                if not query.strip():
                    self.add(where, "variable-query-missing", "query variable has no query")
                self.check_query(where, query, defined, later=set(names) - defined)
            defined.add(name)
        return defined

    def check_query(self, where: str, query: str, defined: set[str],
                    later: set[str] | None = None) -> None:
        for ref in find_variables(query):
            if ref.name in UNSUPPORTED_VARIABLES:
                self.add(where, "unsupported-builtin",
                         f"{ref.text} is not substituted by the InfluxDB data source")
            elif ref.name in BUILTIN_VARIABLES or ref.name in defined:
                continue
            elif later and ref.name in later:
                self.add(where, "variable-order", f"{ref.text} is defined only after this variable")
            else:
                self.add(where, "undefined-variable", f"query uses undefined variable {ref.text}")

    def check_panels(self, defined: set[str]) -> None:
        seen: dict[object, str] = {}
        for panel in iter_panels(self.model):
            label = panel_label(panel)
            panel_id = panel.get("id")
            if not isinstance(panel_id, int):
                self.add(label, "panel-id-missing", "panel has no integer id")
            elif panel_id in seen:
                self.add(label, "panel-id-duplicate",
                         f"panel id {panel_id} duplicates {seen[panel_id]}")
            else:
                seen[panel_id] = label
            if panel.get("type") == "row":
                continue
            self.check_panel(panel, label, defined)

    def check_panel(self, panel: Mapping[str, Any], label: str, defined: set[str]) -> None:
        self.check_panel_metadata(panel, label)
        repeat = panel.get("repeat")
        if repeat and repeat not in defined:
            self.add(label, "undefined-variable",
                     f"repeated panel uses undefined variable ${repeat}")
        targets = panel.get("targets") or []
        if not targets and panel.get("type") not in NO_QUERY_TYPES:
            self.add(label, "panel-no-targets", "panel has no queries")
        for target in targets:
            if not isinstance(target, Mapping):
                continue
            where = f"{label} {target.get('refId', '?')}"
            if not uses_datasource_variable(target.get("datasource")):
                self.add(where, "target-datasource", f"query data source must be {DATASOURCE_REF}")
            query = target.get("query")
            if not isinstance(query, str) or not query.strip() or not target.get("rawQuery"):
                self.add(where, "target-not-raw", "query must be raw InfluxQL (rawQuery + query)")
                continue
            self.check_query(where, query, defined)

    def check_panel_metadata(self, panel: Mapping[str, Any], label: str) -> None:
        if not panel.get("title"):
            self.add(label, "panel-title-missing", "panel has no title")
        if not panel.get("description"):
            self.add(label, "panel-description-missing", "panel has no description")
        if panel.get("type") not in UNIT_EXEMPT_TYPES:
            unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
            if not unit:
                self.add(label, "panel-unit-missing",
                         "panel has no unit (fieldConfig.defaults.unit)")
        if "datasource" in panel and panel["datasource"] is not None \
                and not uses_datasource_variable(panel["datasource"]):
            self.add(label, "panel-datasource", f"panel data source must be {DATASOURCE_REF}")
        interval = panel.get("interval")
        if interval:
            try:
                interval_to_ms(str(interval))
            except ValueError:
                self.add(label, "panel-interval",
                         f"panel min interval {interval!r} is not a duration (e.g. 10s, 1m)")

    def check_annotations(self, defined: set[str]) -> None:
        for annotation in (self.model.get("annotations") or {}).get("list") or []:
            if not isinstance(annotation, Mapping) or is_builtin_annotation(annotation):
                continue
            where = f"annotation {annotation.get('name', '?')}"
            if not uses_datasource_variable(annotation.get("datasource")):
                self.add(where, "annotation-datasource",
                         f"annotation data source must be {DATASOURCE_REF}")
            query = annotation_query(annotation)
            if not query or not query.strip():
                self.add(where, "annotation-query-missing", "annotation has no InfluxQL query")
                continue
            self.check_query(where, query, defined)


def lint_dashboard(dashboard: Any) -> list[Problem]:
    """The checks of one dashboard (a dict, or an object with `.model`)."""
    return _Checker(_model(dashboard)).run()


def _urls(node: object) -> Iterator[str]:
    """Every `url` and markdown `content` string under node."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in ("url", "content") and isinstance(value, str):
                yield value
            else:
                yield from _urls(value)
    elif isinstance(node, list):
        for item in node:
            yield from _urls(item)


def dashboard_links(model: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    """(panel label or None, linked uid) for every `/d/<uid>` link: dashboard links, panel
    links, data links in field config and overrides, and markdown in text panels."""
    for url in _urls(model.get("links") or []):
        for uid in DASHBOARD_LINK_RE.findall(url):
            yield None, uid
    for panel in iter_panels(model):
        if panel.get("type") == "row":
            continue
        for url in _urls({k: v for k, v in panel.items() if k != "targets"}):
            for uid in DASHBOARD_LINK_RE.findall(url):
                yield panel_label(panel), uid


def lint_all(dashboards: Sequence[Any]) -> list[Problem]:
    """Every dashboard's checks, duplicate uids and links to dashboards not in the set."""
    models = [_model(d) for d in dashboards]
    problems: list[Problem] = []
    uids: dict[str, int] = {}
    for model in models:
        problems += lint_dashboard(model)
        uid = model.get("uid")
        if isinstance(uid, str) and uid:
            uids[uid] = uids.get(uid, 0) + 1
    for uid, count in sorted(uids.items()):
        if count > 1:
            problems.append(Problem(uid, None, "uid-duplicate", f"{count} dashboards use this uid"))
    for model in models:
        for label, target in dashboard_links(model):
            if target not in uids:
                problems.append(Problem(str(model.get("uid")), label, "link-unknown-dashboard",
                                        f"link to unknown dashboard uid {target!r}"))
    return problems


def lint_deterministic(first: Sequence[Any], second: Sequence[Any]) -> list[Problem]:
    """Two builds must give the same uids and the same JSON (uids stay stable across builds)."""
    a = {str(_model(d).get("uid")): _model(d) for d in first}
    b = {str(_model(d).get("uid")): _model(d) for d in second}
    problems = [Problem(uid, None, "uid-unstable", "uid differs between two builds")
                for uid in sorted(set(a) ^ set(b))]
    problems += [Problem(uid, None, "build-unstable", "JSON differs between two builds")
                 for uid in sorted(set(a) & set(b)) if a[uid] != b[uid]]
    return problems
