"""Run every dashboard query against a real InfluxDB the way Grafana would, and report the ones
that fail, return no series, or return only nulls.

For each dashboard the variables are resolved in order as Grafana does: the data source
variable, then each query variable by expanding and running its query (`SHOW TAG VALUES ...`,
chained on the variables before it) and choosing All / every value / the first value as the
`Selection` says; custom, constant and textbox variables from their definitions. Then every
panel target (rows' nested panels included; repeated panels once per value) and every
annotation query is expanded (`grafana_expand.expand`) and sent as Grafana sends it:
`GET /query?db=..&epoch=ms&q=..`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from dashboards.catalog import DATASOURCE_UID
from dashboards.grafana_expand import (
    BUILTIN_VARIABLES,
    VariableValue,
    expand,
    find_variables,
    interval_for,
)
from dashboards.lint import (
    annotation_query,
    is_builtin_annotation,
    iter_panels,
    panel_label,
    variable_query,
    variables_of,
)

DATASOURCE_TIME_INTERVAL = "10s"
"""The data source's min interval (provisioning's jsonData.timeInterval)."""
ALL = "$__all"
_RELATIVE_RE = re.compile(r"^now(?:-(\d+)(ms|s|m|h|d|w|M|y))?$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000, "M": 2_592_000_000, "y": 31_536_000_000}


@dataclass(frozen=True)
class InfluxEndpoint:
    """Where the data source points: base URL, database and optional credentials."""

    url: str
    database: str
    user: str | None = None
    password: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Selection:
    """Which values the variables take.

    `all`: "All" where the variable offers it, else every value if multi-value, else the first;
    `first`: the first value. `overrides` fixes a variable's values by name.
    """

    mode: Literal["all", "first"] = "all"
    overrides: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryResult:
    dashboard_uid: str
    where: str
    """`#id title`, `variable name` or `annotation name`"""
    ref_id: str
    query: str
    """the expanded query, as sent"""
    problem: str | None = None
    """None when the query returned at least one non-null value"""
    series: int = 0


@dataclass
class VerifyReport:
    results: list[QueryResult] = field(default_factory=list)
    variables: dict[str, dict[str, VariableValue]] = field(default_factory=dict)
    """dashboard uid → the resolved variables"""

    @property
    def problems(self) -> list[QueryResult]:
        return [r for r in self.results if r.problem is not None]

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_time(text: str, now_ms: int | None = None) -> int:
    """`now`, `now-1h`, `now-30m`, `now-7d` or epoch milliseconds → epoch ms."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    text = text.strip()
    if text.isdigit():
        return int(text)
    m = _RELATIVE_RE.match(text)
    if m is None:
        raise ValueError(f"not a time: {text!r} (now, now-1h, now-7d or epoch ms)")
    return now_ms - (int(m.group(1)) * _UNIT_MS[m.group(2)] if m.group(1) else 0)


class _Influx:
    def __init__(self, endpoint: InfluxEndpoint, timeout_s: float) -> None:
        self.endpoint = endpoint
        headers = {"Authorization": f"Token {endpoint.token}"} if endpoint.token else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers, trust_env=False)

    def query(self, q: str) -> tuple[list[dict[str, Any]], str | None]:
        """(series of every statement, error or None)."""
        params = {"db": self.endpoint.database, "epoch": "ms", "q": q}
        if self.endpoint.user:
            params |= {"u": self.endpoint.user, "p": self.endpoint.password or ""}
        try:
            resp = self.client.get(f"{self.endpoint.url.rstrip('/')}/query", params=params)
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            return [], f"request failed: {exc}"
        if "error" in body:
            return [], f"InfluxDB error: {body['error']}"
        if resp.status_code != 200:
            return [], f"InfluxDB HTTP {resp.status_code}"
        series: list[dict[str, Any]] = []
        for statement in body.get("results", []):
            if "error" in statement:
                return [], f"InfluxDB error: {statement['error']}"
            series += statement.get("series", [])
        return series, None

    def close(self) -> None:
        self.client.close()


_SELECT_RE = re.compile(r'\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+"(?P<measurement>[^"]+)"'
                        r"(?:\s+WHERE\s+(?P<where>.*?))?(?:\s+GROUP\s+BY.*)?$",
                        re.IGNORECASE | re.DOTALL)


def _problem_of(series: list[dict[str, Any]]) -> str | None:
    if not series:
        return "no data (no series)"
    for s in series:
        columns = s.get("columns", [])
        data_cols = [i for i, c in enumerate(columns) if c != "time"] or list(range(len(columns)))
        if any(row[i] is not None for row in s.get("values", []) for i in data_cols):
            return None
    return "all values are null"


def _metric_values(query: str, series: list[dict[str, Any]]) -> list[str]:
    """The values a query variable offers (Grafana's ResponseParser): SHOW TAG VALUES gives
    its `value` column, other SHOWs their first column, SELECTs every non-time value."""
    show_tag_values = re.match(r"\s*SHOW\s+TAG\s+VALUES", query, re.IGNORECASE) is not None
    values: list[str] = []
    for s in series:
        columns = s.get("columns", [])
        for row in s.get("values", []):
            if show_tag_values and "value" in columns:
                cells = [row[columns.index("value")]]
            elif query.lstrip().upper().startswith("SHOW"):
                cells = row[:1]
            else:
                cells = [v for c, v in zip(columns, row, strict=False) if c != "time"]
            values += [str(v) for v in cells if v is not None]
    return list(dict.fromkeys(values))


def _regex_filter(values: list[str], regex: object) -> list[str]:
    """A variable's `regex` (`/pattern/` or a bare pattern): keep matches, the first group
    when there is one."""
    if not isinstance(regex, str) or not regex:
        return values
    m = re.match(r"^/(.*)/([gimsuy]*)$", regex, re.DOTALL)
    pattern = re.compile(m.group(1) if m else regex,
                         re.IGNORECASE if m and "i" in m.group(2) else 0)
    kept = []
    for v in values:
        found = pattern.search(v)
        if found:
            kept.append(found.group(1) if pattern.groups and found.group(1) else v)
    return list(dict.fromkeys(kept))


def _sorted(values: list[str], sort: object) -> list[str]:
    """Variable `sort`: 1/2 alphabetical, 3/4 numerical, 5/6 case-insensitive (asc/desc)."""
    if sort in (1, 2):
        return sorted(values, reverse=sort == 2)
    if sort in (3, 4):
        def number(v: str) -> float:
            m = re.search(r"-?\d+(?:\.\d+)?", v)
            return float(m.group(0)) if m else float("-inf")
        return sorted(values, key=number, reverse=sort == 4)
    if sort in (5, 6):
        return sorted(values, key=str.lower, reverse=sort == 6)
    return values


def _static_options(variable: Mapping[str, Any]) -> list[str]:
    options = [str(o.get("value")) for o in variable.get("options") or []
               if isinstance(o, Mapping) and o.get("value") not in (None, ALL)]
    if options:
        return options
    query = variable_query(variable)
    # custom: "a,b,c" or "label : value, ..."
    return [part.split(" : ")[-1].strip() for part in re.split(r"(?<!\\),", query)
            if part.strip()]


def _current(variable: Mapping[str, Any]) -> list[str]:
    current = (variable.get("current") or {}).get("value")
    if isinstance(current, list):
        return [str(v) for v in current]
    return [str(current)] if current not in (None, "") else []


class _Verifier:
    def __init__(self, influx: _Influx, time_from_ms: int, time_to_ms: int,
                 selection: Selection, report: VerifyReport) -> None:
        self.influx = influx
        self.time_from_ms = time_from_ms
        self.time_to_ms = time_to_ms
        self.selection = selection
        self.report = report
        self._keys: dict[str, tuple[set[str], set[str]] | str] = {}
        """measurement -> (field keys, tag keys), or the error that reading them gave"""

    def _expand(self, query: str, variables: Mapping[str, VariableValue],
                panel: Mapping[str, Any]) -> str:
        interval = interval_for(panel, self.time_from_ms, self.time_to_ms,
                                DATASOURCE_TIME_INTERVAL)
        return expand(query, time_from_ms=self.time_from_ms, time_to_ms=self.time_to_ms,
                      variables=variables, interval_ms=interval)

    def _choose(self, variable: Mapping[str, Any], options: list[str]) -> VariableValue:
        name = str(variable.get("name"))
        multi = bool(variable.get("multi"))
        include_all = bool(variable.get("includeAll"))
        all_value = variable.get("allValue") or None
        common = {"multi": multi, "include_all": include_all, "all_value": all_value}
        if name in self.selection.overrides:
            return VariableValue(values=tuple(self.selection.overrides[name]), **common)
        if self.selection.mode == "all" and include_all:
            return VariableValue(values=tuple(options), is_all=True, **common)
        if self.selection.mode == "all" and multi:
            return VariableValue(values=tuple(options), **common)
        return VariableValue(values=tuple(options[:1]), **common)

    def resolve_variables(self, uid: str, model: Mapping[str, Any]) -> dict[str, VariableValue]:
        resolved: dict[str, VariableValue] = {}
        for variable in variables_of(model):
            name = str(variable.get("name"))
            kind = variable.get("type")
            if kind == "datasource":
                resolved[name] = VariableValue.single(DATASOURCE_UID)
                continue
            if kind == "query":
                options = self._query_options(uid, variable, resolved)
            elif kind in ("custom", "interval"):
                options = _static_options(variable)
            elif kind == "constant":
                options = [variable_query(variable)]
            else:  # textbox and anything else: what it holds now
                options = _current(variable) or [variable_query(variable)]
            resolved[name] = self._choose(variable, options)
        return resolved

    def _query_options(self, uid: str, variable: Mapping[str, Any],
                       resolved: Mapping[str, VariableValue]) -> list[str]:
        name = str(variable.get("name"))
        query = self._expand(variable_query(variable), resolved, {})
        series, error = self.influx.query(query)
        options = _sorted(_regex_filter(_metric_values(query, series), variable.get("regex")),
                          variable.get("sort"))
        problem = error or (None if options else "variable has no values")
        self.report.results.append(QueryResult(uid, f"variable {name}", "-", query, problem,
                                               len(series)))
        return options

    def run_query(self, uid: str, where: str, ref_id: str, query: str,
                  variables: Mapping[str, VariableValue], panel: Mapping[str, Any],
                  events: bool = False) -> None:
        """Run one query; `events` (annotations): an empty answer is fine when the query names
        only a measurement, fields and tags the stack writes."""
        unknown = [r.text for r in find_variables(query)
                   if r.name not in variables and r.name not in BUILTIN_VARIABLES]
        expanded = self._expand(query, variables, panel)
        if unknown:
            self.report.results.append(QueryResult(
                uid, where, ref_id, expanded, f"undefined variable(s): {', '.join(unknown)}"))
            return
        series, error = self.influx.query(expanded)
        problem = error or _problem_of(series)
        if events and not error and not series:
            problem = self.schema_problem(expanded)
        self.report.results.append(QueryResult(uid, where, ref_id, expanded, problem,
                                               len(series)))

    def panel_scopes(self, panel: Mapping[str, Any], variables: dict[str, VariableValue]
                     ) -> Iterator[dict[str, VariableValue]]:
        """One variable map per panel instance: a repeated panel once per value."""
        repeat = panel.get("repeat")
        value = variables.get(repeat) if isinstance(repeat, str) else None
        if value is None:
            yield variables
            return
        for v in value.values:
            yield {**variables, repeat: VariableValue(values=(v,), multi=value.multi,
                                                      include_all=value.include_all,
                                                      scoped=True)}

    def dashboard(self, model: Mapping[str, Any]) -> None:
        uid = str(model.get("uid"))
        variables = self.resolve_variables(uid, model)
        self.report.variables[uid] = variables
        for panel in iter_panels(model):
            if panel.get("type") == "row":
                continue
            for scope in self.panel_scopes(panel, variables):
                for target in panel.get("targets") or []:
                    query = target.get("query") if isinstance(target, Mapping) else None
                    if not isinstance(query, str) or target.get("hide"):
                        continue
                    self.run_query(uid, panel_label(panel), str(target.get("refId", "?")),
                                   query, scope, panel)
        for annotation in (model.get("annotations") or {}).get("list") or []:
            if not isinstance(annotation, Mapping) or is_builtin_annotation(annotation):
                continue
            query = annotation_query(annotation)
            if query:
                self.run_query(uid, f"annotation {annotation.get('name', '?')}", "Anno", query,
                               variables, {}, events=True)

    def _schema(self, measurement: str) -> tuple[set[str], set[str]] | str:
        """The measurement's field and tag keys, read once per verify run."""
        if measurement not in self._keys:
            found: list[set[str]] = []
            for kind, column in (("FIELD", "fieldKey"), ("TAG", "tagKey")):
                series, error = self.influx.query(f'SHOW {kind} KEYS FROM "{measurement}"')
                if error:
                    self._keys[measurement] = error
                    break
                found.append({str(row[s["columns"].index(column)]) for s in series
                              for row in s.get("values", [])})
            else:
                self._keys[measurement] = (found[0], found[1])
        return self._keys[measurement]

    def schema_problem(self, query: str) -> str | None:
        """For an event query that found nothing: does it name a measurement, fields and tags
        the stack writes? (No alarm in the range is normal; a misspelt field is not.)"""
        found = _SELECT_RE.match(query)
        if not found:
            return "no data (no series), and its measurement and fields cannot be checked"
        fields = set(re.findall(r'"([^"]+)"', found.group("fields")))
        measurement = found.group("measurement")
        tags = set(re.findall(r'"([^"]+)"\s*(?:=~|!~|=|!=|<>)', found.group("where") or ""))
        keys = self._schema(measurement)
        if isinstance(keys, str):
            return keys
        field_keys, tag_keys = keys
        if not field_keys:
            return f"measurement {measurement} does not exist (never written)"
        missing = sorted((fields | tags) - field_keys - tag_keys)
        return (f"measurement {measurement} has no field or tag {', '.join(missing)}"
                if missing else None)


def verify(dashboards: Sequence[Any], influx: InfluxEndpoint, time_from_ms: int,
           time_to_ms: int, selection: Selection | None = None, *,
           timeout_s: float = 30.0) -> VerifyReport:
    """Run every query of `dashboards` (dicts or objects with `.model`) over the range."""
    report = VerifyReport()
    client = _Influx(influx, timeout_s)
    try:
        verifier = _Verifier(client, time_from_ms, time_to_ms, selection or Selection(), report)
        for d in dashboards:
            verifier.dashboard(getattr(d, "model", d))
    finally:
        client.close()
    return report
