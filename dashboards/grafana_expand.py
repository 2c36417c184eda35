"""Expand a panel's or a variable's InfluxQL query the way Grafana does before it reaches InfluxDB.

Grafana (10.x and later, backend mode) turns a raw InfluxQL query into the text sent to
`GET /query?db=..&epoch=ms&q=..` in two passes:

1. the frontend's template service replaces dashboard variables (`$v`, `${v}`, `${v:fmt}`,
   `[[v]]`) through the InfluxDB plugin's `interpolateQueryExpr`, and the global `${__from}` /
   `${__to}` (epoch ms);
2. the backend replaces, by plain string replacement in this order, `$timeFilter`, `$interval`,
   `$__interval_ms`, `$__interval`.

The interval is `max(round_interval((to - from) / maxDataPoints), min_interval)`.

Sources (grafana/grafana):
- `public/app/plugins/datasource/influxdb/datasource.ts` (`interpolateQueryExpr`, and its spec
  `datasource.test.ts` for the regex-literal and number cases),
- `public/app/features/templating/template_srv.ts` (variable syntax, All handling),
- `pkg/tsdb/influxdb/influxql/` and `pkg/tsdb/influxdb/models/query.go` (`Build`: the
  `$timeFilter`/`$interval`/`$__interval_ms`/`$__interval` replacement, `renderTimeFilter`),
- `pkg/gtime/gtime.go` (`FormatInterval`: largest whole unit y/d/h/m/s/ms),
- `packages/grafana-data/src/datetime/rangeutil.ts` (`calculateInterval`, `roundInterval`,
  `intervalToMs`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MAX_DATA_POINTS = 500
"""Grafana sends the panel's width in pixels when it has no maxDataPoints; take 500."""

BUILTIN_VARIABLES = frozenset({
    "timeFilter", "interval", "__interval", "__interval_ms", "__from", "__to",
})
"""Names Grafana (or the InfluxDB backend) substitutes for InfluxQL without a dashboard variable."""

UNSUPPORTED_VARIABLES = frozenset({
    "__range", "__range_ms", "__range_s", "__rate_interval", "__rate_interval_ms",
})
"""Built-ins that the InfluxDB backend leaves in the query text: never use them."""

# template_srv.ts: `$name`, `[[name]]` / `[[name:fmt]]`, `${name}` / `${name.path}` / `${name:fmt}`.
VARIABLE_RE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")

_REGEX_LITERAL = re.compile(r"[=!]~\s*/((?:[^/\\\n]|\\.)*)/")
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
# JavaScript's parseFloat accepts a leading number (after whitespace): "12abc", "-1", ".5".
_STARTS_WITH_NUMBER = re.compile(r"^\s*[+-]?(?:Infinity|\d|\.\d)")

# rangeutil.ts roundInterval: (upper bound of the raw interval in ms, result in ms).
ROUND_INTERVAL_STEPS: tuple[tuple[int, int], ...] = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
    (1_500, 1_000), (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000),
    (25_000, 20_000), (45_000, 30_000), (90_000, 60_000), (210_000, 120_000),
    (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000),
    (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
    (16_200_000, 10_800_000), (32_400_000, 21_600_000), (86_400_000, 43_200_000),
    (604_800_000, 86_400_000), (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
)
_ONE_YEAR_MS = 31_536_000_000

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000, "M": 2_592_000_000, "y": _ONE_YEAR_MS}
_INTERVAL_RE = re.compile(r"^\s*>?\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|M|y)\s*$")


@dataclass(frozen=True)
class VariableValue:
    """A dashboard variable's current value as Grafana holds it.

    `values` are the selected values; when `is_all` is set they are all of the variable's
    options (used when there is no `all_value`). `scoped` marks a single value given to a
    repeated panel (Grafana's scopedVars), which is interpolated as a plain string.
    """

    values: tuple[str, ...]
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    is_all: bool = False
    scoped: bool = False

    @classmethod
    def single(cls, value: str) -> VariableValue:
        return cls(values=(value,))

    def _as_grafana_value(self) -> str | list[str]:
        """The string or list Grafana hands to `interpolateQueryExpr`."""
        if self.is_all or (self.multi and not self.scoped):
            return list(self.values)
        return self.values[0] if self.values else ""


@dataclass(frozen=True)
class VariableRef:
    """One variable reference found in a query."""

    name: str
    text: str
    """the reference as written (`$site`, `${site:regex}`, `[[site]]`)"""
    fmt: str | None = None


def find_variables(query: str) -> list[VariableRef]:
    """Every variable reference in `query`, in order (built-ins included)."""
    refs = []
    for m in VARIABLE_RE.finditer(query):
        name = m.group(1) or m.group(2) or m.group(4)
        refs.append(VariableRef(name=name, text=m.group(0), fmt=m.group(3) or m.group(6)))
    return refs


def escape_regex(value: str) -> str:
    """Grafana's `escapeRegex`: backslash every regex metacharacter and `/`."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def _in_regex_literal(query: str, name: str) -> bool:
    """Whether `$name` (any syntax) sits in a regex literal: the body of `=~ /…/` or `!~ /…/`,
    or a literal that is just the variable, optionally anchored or grouped (`/$v/`, `/^$v$/`,
    `/^($v)$/`). Then Grafana escapes a single value."""
    token = (rf"(?:\${re.escape(name)}(?!\w)|\$\{{{re.escape(name)}(?::[^}}]*)?\}}"
             rf"|\[\[{re.escape(name)}(?::\w+)?\]\])")
    for literal in _REGEX_LITERAL.finditer(query):
        if re.search(token, literal.group(1)):
            return True
    return re.search(rf"/\^?\(?{token}\)?\$?/", query) is not None


def _format(value: str | list[str], variable: VariableValue, name: str, query: str,
            fmt: str | None) -> str:
    if fmt == "raw":
        return value if isinstance(value, str) else ",".join(value)
    if fmt in ("csv", "pipe"):
        values = [value] if isinstance(value, str) else value
        return ("," if fmt == "csv" else "|").join(values)
    if fmt == "regex":
        values = [value] if isinstance(value, str) else value
        escaped = [escape_regex(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt is not None:
        raise ValueError(f"variable format {fmt!r} is not supported here (${{{name}:{fmt}}})")
    # interpolateQueryExpr
    if isinstance(value, list):
        return "(" + "|".join(escape_regex(v) for v in value) + ")"
    if _STARTS_WITH_NUMBER.match(value):
        return value
    if variable.multi or _in_regex_literal(query, name):
        return escape_regex(value)
    return value


def interpolate_variables(query: str, variables: Mapping[str, VariableValue], *,
                          time_from_ms: int, time_to_ms: int) -> str:
    """The frontend pass: dashboard variables and `${__from}`/`${__to}`.

    Unknown names (and the backend's `$timeFilter`, `$__interval`, ...) are left as written,
    as Grafana's template service does.
    """

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name == "__from":
            return str(time_from_ms)
        if name == "__to":
            return str(time_to_ms)
        variable = variables.get(name)
        if variable is None:
            return m.group(0)
        if variable.is_all and variable.all_value is not None:
            return variable.all_value  # a custom all value goes in verbatim
        return _format(variable._as_grafana_value(), variable, name, query, fmt)

    return VARIABLE_RE.sub(replace, query)


def format_interval(interval_ms: int) -> str:
    """gtime.FormatInterval: the interval in its largest whole unit, truncated."""
    for unit_ms, suffix in ((_ONE_YEAR_MS, "y"), (86_400_000, "d"), (3_600_000, "h"),
                            (60_000, "m"), (1_000, "s"), (1, "ms")):
        if interval_ms >= unit_ms:
            return f"{interval_ms // unit_ms}{suffix}"
    return "1ms"


def time_filter(time_from_ms: int, time_to_ms: int) -> str:
    """The backend's `renderTimeFilter` (epoch ms, for relative ranges too)."""
    return f"time >= {time_from_ms}ms and time <= {time_to_ms}ms"


def expand(query: str, *, time_from_ms: int, time_to_ms: int,
           variables: Mapping[str, VariableValue], interval_ms: int) -> str:
    """The query text Grafana sends to InfluxDB for this range, interval and variables."""
    text = interpolate_variables(query, variables, time_from_ms=time_from_ms,
                                 time_to_ms=time_to_ms)
    interval_text = format_interval(interval_ms)
    text = text.replace("$timeFilter", time_filter(time_from_ms, time_to_ms))
    text = text.replace("$interval", interval_text)
    text = text.replace("$__interval_ms", str(interval_ms))
    return text.replace("$__interval", interval_text)


def round_interval(raw_ms: float) -> int:
    """rangeutil.roundInterval."""
    for upper, result in ROUND_INTERVAL_STEPS:
        if raw_ms < upper:
            return result
    return _ONE_YEAR_MS


def interval_to_ms(text: str) -> int:
    """rangeutil.intervalToMs for `10s`, `1m`, `>10s` (the `>` of a min interval is dropped)."""
    m = _INTERVAL_RE.match(text)
    if m is None:
        raise ValueError(f"not an interval: {text!r}")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2)])


def interval_for(panel: Mapping[str, object], time_from_ms: int, time_to_ms: int,
                 datasource_time_interval: str | None) -> int:
    """The interval (ms) Grafana computes for a panel's queries over this range.

    `max(round_interval((to - from) / maxDataPoints), min_interval)`; maxDataPoints is the
    panel's else 500 (its width); min_interval is the panel's `interval`, else the data
    source's `timeInterval`, else 1 ms.
    """
    max_points = panel.get("maxDataPoints")
    resolution = max_points if isinstance(max_points, int) and max_points > 0 \
        else DEFAULT_MAX_DATA_POINTS
    panel_interval = panel.get("interval")
    if isinstance(panel_interval, str) and panel_interval.strip():
        low_limit = interval_to_ms(panel_interval)
    elif datasource_time_interval:
        low_limit = interval_to_ms(datasource_time_interval)
    else:
        low_limit = 1
    raw = (time_to_ms - time_from_ms) / resolution
    return max(round_interval(raw), low_limit)
