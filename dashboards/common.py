"""The pieces every dashboard shares: variables, filters, panels, units, thresholds, links.

Units, labels and thresholds are read from the device profiles and their alarm rules (never typed
here), so renaming a point or moving a limit in a profile changes the dashboards with it.
Panels are plain grafana-foundation-sdk builders; `Board` collects them, numbers them, attaches
the rule engine's alarms as annotations to the panels whose points they concern, and returns the
dashboard JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import bargauge, geomap, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import dashboard as gdb
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as gc
from grafana_foundation_sdk.models import dashboard as gm
from grafana_foundation_sdk.models import geomap as gmap

from dashboards.influxql import DATASOURCE_TYPE, DATASOURCE_VARIABLE, InfluxQL, datasource_ref
from device_profiles.rules import AggregateAlarm, AlarmRule, Severity, ThresholdAlarm
from device_profiles.schema import DataType, Point, Profile, ProfileSet

TZ = "Asia/Shanghai"
"""Days and months are the district's (UTC+8): daily buckets use `tz('Asia/Shanghai')`."""
DAILY = f"time(1d) fill(none) tz('{TZ}')"

DOMAIN_LABELS = {"smart_pole": "智慧灯杆", "pump_station": "扬水站", "fire": "智慧消防",
                 "water": "水表与水利"}
SEVERITY_LABELS = {Severity.critical: "紧急", Severity.major: "重要", Severity.minor: "次要",
                   Severity.warning: "提示"}
SEVERITY_COLORS = {Severity.critical: "red", Severity.major: "orange", Severity.minor: "yellow",
                   Severity.warning: "blue"}
STATUS_TEXTS = {0: ("正常", "green"), 1: ("告警", "red"), 2: ("离线", "text")}
"""`device_health.status` codes (docs/architecture.md)."""

UIDS = {"overview": "dciot-overview", "devices": "dciot-devices", "events": "dciot-events",
        **{domain: f"dciot-{domain}" for domain in DOMAIN_LABELS}}
"""Stable dashboard uids (a domain's is `dciot-<domain>`)."""

_UNITS = {
    "": "none", "m": "lengthm", "A": "amp", "mA": "mamp", "V": "volt", "W": "watt",
    "kWh": "kwatth", "Hz": "hertz", "%": "percent", "%RH": "humidity", "°C": "celsius",
    "°": "degree", "µg/m³": "conμgm3", "m³": "m3", "s": "s",
}


def grafana_unit(unit: str) -> str:
    """Grafana's unit id for a profile unit; units Grafana lacks show as a suffix."""
    return _UNITS.get(unit, f"suffix:{unit}")


def point_unit(point: Point) -> str:
    return "bool_on_off" if point.type == DataType.bool else grafana_unit(point.unit)


# ---- profiles -------------------------------------------------------------------------------

def domain_profiles(profiles: ProfileSet, domain: str) -> list[Profile]:
    return sorted((p for p in profiles.profiles.values() if str(p.domain) == domain),
                  key=lambda p: p.id)


def points_where(profiles: Iterable[Profile], predicate: Any) -> list[Point]:
    """Points (first of each name) of `profiles` for which predicate(profile, point) holds."""
    seen: dict[str, Point] = {}
    for profile in profiles:
        for point in profile.points:
            if point.name not in seen and predicate(profile, point):
                seen[point.name] = point
    return list(seen.values())


def rules_on(profile: Profile, point: str) -> list[AlarmRule]:
    return [r for r in profile.alarms if point in r.points()]


def limit_rules(profile: Profile, point: str) -> list[ThresholdAlarm | AggregateAlarm]:
    """Rules with a limit on this point's value (threshold, or an aggregate such as a 24-h mean)."""
    return [r for r in rules_on(profile, point) if isinstance(r, ThresholdAlarm | AggregateAlarm)]


def thresholds_for(profile: Profile, point: str) -> gdb.ThresholdsConfig | None:
    """Threshold steps from the point's threshold rules (raise levels), coloured by severity.

    `above` rules colour from their raise level up; `below` rules colour everything under it.
    """
    rules = limit_rules(profile, point)
    if not rules:
        return None
    below = sorted((r for r in rules if r.direction == "below"), key=lambda r: r.raise_at)
    above = sorted((r for r in rules if r.direction == "above"), key=lambda r: r.raise_at)
    steps: list[gm.Threshold] = []
    base = SEVERITY_COLORS[below[0].severity] if below else "green"
    steps.append(gm.Threshold(value=None, color=base))
    for i, rule in enumerate(below):
        after = SEVERITY_COLORS[below[i + 1].severity] if i + 1 < len(below) else "green"
        steps.append(gm.Threshold(value=rule.raise_at, color=after))
    for rule in above:
        steps.append(gm.Threshold(value=rule.raise_at, color=SEVERITY_COLORS[rule.severity]))
    return gdb.ThresholdsConfig().mode(gm.ThresholdsMode.ABSOLUTE).steps(steps)


def threshold_text(profile: Profile, point: str) -> str:
    """The limits in words for a panel description: 告警限值（来自设备模型 …）."""
    parts = [f"{r.title_zh.split('：')[0].replace('{device}', '')} "
             f"{'≥' if r.direction == 'above' else '≤'} {r.raise_at:g}"
             for r in limit_rules(profile, point)]
    if not parts:
        return ""
    return f"告警限值（设备模型 {profile.id} 的告警规则）：" + "；".join(parts) + "。"


_STATE_TEXTS = re.compile(r"[（(]((?:\s*\d+\s*[^\d\s）)]+)+)\s*[）)]")


def value_texts(point: Point) -> dict[str, str]:
    """Codes spelled out in a point's label, e.g. "阀门状态（0关 1开 2动作中 3故障）"."""
    found = _STATE_TEXTS.search(point.label_zh)
    if not found:
        return {}
    return dict(re.findall(r"(\d+)\s*([^\d\s]+)", found.group(1)))


def short_label(point: Point) -> str:
    return re.split(r"[（(]", point.label_zh)[0]


# ---- queries --------------------------------------------------------------------------------

def place_filter(*levels: str) -> str:
    """`"town" =~ /^$town$/ AND …`: the multi-value/All idiom for the chained variables."""
    return " AND ".join(f'"{level}" =~ /^${level}$/' for level in levels)


def q(text: str, ref: str = "A", alias: str | None = None, table_format: bool = False
      ) -> InfluxQL:
    query = InfluxQL(" ".join(text.split())).ref_id(ref)
    if alias:
        query = query.alias(alias)
    return query.table() if table_format else query


def field_list(points: Sequence[Point], function: str, prefix: str = "") -> str:
    """`mean("pm25") AS "PM2.5", …` for several points, labelled in Chinese."""
    return ", ".join(f'{function}("{prefix}{p.name}") AS "{short_label(p)}"' for p in points)


def regex_of(values: Iterable[str]) -> str:
    return "/^(" + "|".join(re.escape(v) for v in values) + ")$/"


# ---- variables ------------------------------------------------------------------------------

def datasource_variable() -> gdb.DatasourceVariable:
    return (gdb.DatasourceVariable(DATASOURCE_VARIABLE).label("数据源").type(DATASOURCE_TYPE)
            .description("InfluxDB 数据源（InfluxQL）"))


def tag_variable(name: str, label: str, measurement: str, where: str = "",
                 description: str = "") -> gdb.QueryVariable:
    """A chained, multi-value tag variable with "All" (`.*`), refreshed with the time range."""
    query = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{name}"'
    if where:
        query += f" WHERE {where}"
    return (gdb.QueryVariable(name).label(label).datasource(datasource_ref()).query(query)
            .refresh(gm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(gm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*")
            .current(gm.VariableOption(selected=True, text=["All"], value=["$__all"]))
            .description(description or f"{label}（来自 {measurement} 的 {name} 标签）"))


def place_variables(domain: str | None) -> list[cogbuilder.Builder[Any]]:
    """domain → town → site → device, each narrowed by the ones before it; a domain dashboard
    pins the domain instead of offering it."""
    where: list[str] = [f"\"domain\" = '{domain}'"] if domain else ['"domain" =~ /^$domain$/']
    variables: list[cogbuilder.Builder[Any]] = [datasource_variable()]
    if domain is None:
        variables.append(tag_variable("domain", "业务领域", "device_health"))
    for name, label in (("town", "街道"), ("site", "站点"), ("device", "设备")):
        variables.append(tag_variable(name, label, "device_health", " AND ".join(where)))
        where.append(f'"{name}" =~ /^${name}$/')
    return variables


# ---- panels ---------------------------------------------------------------------------------

def _common(panel: Any, title: str, description: str, unit: str, w: int, h: int) -> Any:
    return (panel.title(title).description(description).unit(unit).datasource(datasource_ref())
            .span(w).height(h))


def ts_panel(title: str, description: str, unit: str, *targets: InfluxQL, w: int = 12, h: int = 8,
             thresholds: gdb.ThresholdsConfig | None = None, bars: bool = False,
             interval: str | None = None) -> timeseries.Panel:
    panel = _common(timeseries.Panel(), title, description, unit, w, h)
    for target in targets:
        panel = panel.with_target(target)
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            _Built(gc.GraphThresholdsStyleConfig(mode=gc.GraphThresholdsStyleMode.LINE_AND_AREA)))
    if bars:
        panel = panel.draw_style(gc.GraphDrawStyle.BARS).fill_opacity(60)
    if interval:
        panel = panel.interval(interval)
    return panel.span_nulls(True).legend(_Built(gc.VizLegendOptions(
        display_mode=gc.LegendDisplayMode.TABLE, placement=gc.LegendPlacement.BOTTOM,
        show_legend=True, calcs=["lastNotNull", "max"])))


def stat_panel(title: str, description: str, unit: str, *targets: InfluxQL, w: int = 6,
               h: int = 4, thresholds: gdb.ThresholdsConfig | None = None,
               mappings: list[Any] | None = None) -> stat.Panel:
    panel = _common(stat.Panel(), title, description, unit, w, h)
    for target in targets:
        panel = panel.with_target(target)
    panel = panel.reduce_options(_Built(gc.ReduceDataOptions(calcs=["lastNotNull"], values=False)))
    if thresholds is not None:
        panel = panel.thresholds(thresholds)
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def bar_gauge_panel(title: str, description: str, unit: str, *targets: InfluxQL, w: int = 8,
                    h: int = 8, thresholds: gdb.ThresholdsConfig | None = None,
                    minimum: float | None = None, maximum: float | None = None
                    ) -> bargauge.Panel:
    panel = _common(bargauge.Panel(), title, description, unit, w, h)
    for target in targets:
        panel = panel.with_target(target)
    panel = panel.reduce_options(_Built(gc.ReduceDataOptions(calcs=["lastNotNull"], values=False)))
    if thresholds is not None:
        panel = panel.thresholds(thresholds)
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    return panel


def state_panel(title: str, description: str, *targets: InfluxQL, w: int = 24, h: int = 8,
                texts: dict[str, tuple[str, str]] | None = None) -> statetimeline.Panel:
    """A state timeline; `texts` maps raw values ("true", "0", …) to (Chinese text, colour)."""
    panel = _common(statetimeline.Panel(), title, description, "none", w, h)
    for target in targets:
        panel = panel.with_target(target)
    texts = texts or {"true": ("是", "red"), "false": ("否", "green")}
    return panel.mappings([value_map(texts)]).show_value(gc.VisibilityMode.AUTO)


def table_panel(title: str, description: str, unit: str, *targets: InfluxQL, w: int = 12,
                h: int = 8, sort_by: tuple[str, bool] | None = None,
                links: list[gdb.DashboardLink] | None = None,
                overrides: dict[str, list[gm.DynamicConfigValue]] | None = None) -> table.Panel:
    panel = _common(table.Panel(), title, description, unit, w, h)
    for target in targets:
        panel = panel.with_target(target)
    panel = panel.with_transformation(gm.DataTransformerConfig(id_val="merge", options={}))
    if sort_by:
        panel = panel.sort_by([_Built(gc.TableSortByFieldState(display_name=sort_by[0],
                                                                 desc=sort_by[1]))])
    if links:
        panel = panel.data_links(links)
    for name, properties in (overrides or {}).items():
        panel = panel.override_by_name(name, properties)
    return panel


def value_map(texts: dict[str, tuple[str, str]]) -> gm.ValueMap:
    return gm.ValueMap(options={raw: gm.ValueMappingResult(text=text, color=color, index=i)
                                for i, (raw, (text, color)) in enumerate(texts.items())})


def status_thresholds() -> gdb.ThresholdsConfig:
    return gdb.ThresholdsConfig().mode(gm.ThresholdsMode.ABSOLUTE).steps([
        gm.Threshold(value=None, color="green"), gm.Threshold(value=1, color="red"),
        gm.Threshold(value=2, color="#8e8e8e")])


def device_map(title: str, description: str, query: InfluxQL, w: int = 24, h: int = 12
               ) -> geomap.Panel:
    """Every device at its lat/lon, coloured by `status` (0 正常, 1 告警, 2 离线)."""
    layer = gc.MapLayerOptions(
        type_val="markers", name="设备", location=gc.FrameGeometrySource(
            mode=gc.FrameGeometrySourceMode.COORDS, latitude="lat", longitude="lon"),
        config={"showLegend": True, "style": {
            "color": {"field": "status", "fixed": "green"}, "size": {"fixed": 6},
            "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
            "text": {"field": "device", "mode": "field"}}},
        tooltip=True)
    view = gmap.MapViewConfig(id_val="coords", lat=36.455, lon=115.985, zoom=13)
    panel = _common(geomap.Panel(), title, description, "none", w, h).with_target(query)
    return (panel.view(_Built(view))
            .basemap(_Built(gc.MapLayerOptions(type_val="default", name="底图")))
            .layers([_Built(layer)]).thresholds(status_thresholds())
            .mappings([value_map({str(k): v for k, v in STATUS_TEXTS.items()})]))


def dashboard_link(title: str, uid: str, var_query: str = "") -> gdb.DashboardLink:
    """A link to another of our dashboards, carrying the time range and the variables."""
    url = f"/d/{uid}?${{__url_time_range}}&${{__all_variables}}{var_query}"
    return (gdb.DashboardLink(title).type(gm.DashboardLinkType.LINK).url(url)
            .keep_time(True).include_vars(True).icon("dashboard"))


def drilldown(title: str, uid: str, field_name: str, variable: str) -> gdb.DashboardLink:
    """A data link from a table row to a dashboard filtered to that row's value."""
    url = (f"/d/{uid}?${{__url_time_range}}&var-{variable}=${{__data.fields[\"{field_name}\"]}}")
    return gdb.DashboardLink(title).type(gm.DashboardLinkType.LINK).url(url)


# ---- the dashboard --------------------------------------------------------------------------

@dataclass
class Board:
    """Collects one dashboard's panels; `rules_by_panel` ties alarm rules to the panels showing
    their points, so alarms annotate exactly those panels."""

    uid: str
    title: str
    description: str
    domain: str | None = None
    variables: list[cogbuilder.Builder[Any]] = field(default_factory=list)
    links: list[gdb.DashboardLink] = field(default_factory=list)
    time_from: str = "now-6h"
    _items: list[tuple[str, Any, tuple[str, ...]]] = field(default_factory=list)

    def row(self, title: str) -> None:
        self._items.append(("row", gdb.Row(title), ()))

    def add(self, panel: Any, rules: Iterable[str] = ()) -> None:
        """`rules`: ids of alarm rules whose alarms concern this panel."""
        self._items.append(("panel", panel, tuple(dict.fromkeys(rules))))

    def model(self) -> dict[str, Any]:
        board = (gdb.Dashboard(self.title).uid(self.uid).description(self.description)
                 .tags(["dciot", "数字东昌"]).timezone("browser").time(self.time_from, "now")
                 .refresh("1m").editable().tooltip(gm.DashboardCursorSync.CROSSHAIR)
                 .links(self.links))
        for variable in self.variables:
            board = board.with_variable(variable)
        annotated: list[tuple[int, tuple[str, ...]]] = []
        next_id = 1
        for kind, item, rules in self._items:
            built = item.build()
            built.id_val = next_id
            if kind == "row":
                board = board.with_row(_Built(built))
            else:
                board = board.with_panel(_Built(built))
                if rules:
                    annotated.append((next_id, rules))
            next_id += 1
        for panel_id, rules in annotated:
            board = board.annotation(alarm_annotation(self.domain, rules, [panel_id]))
        encoded = json.dumps(board.build(), cls=JSONEncoder, sort_keys=True, ensure_ascii=False)
        model: dict[str, Any] = json.loads(encoded)
        return model


class _Built(cogbuilder.Builder[Any]):
    """A panel already built (so Board can number it before the dashboard places it)."""

    def __init__(self, built: Any) -> None:
        self._built = built

    def build(self) -> Any:
        return self._built


def alarm_annotation(domain: str | None, rules: Sequence[str], panel_ids: list[int]
                     ) -> gdb.AnnotationQuery:
    """Alarms our rule engine raised and cleared (the `alarms` measurement), on these panels."""
    where = [f"\"domain\" = '{domain}'" if domain else '"domain" =~ /^$domain$/',
             place_filter("town", "site", "device"), f'"rule" =~ {regex_of(rules)}',
             "\"state\" =~ /^(raised|cleared)$/"]
    query = (f'SELECT "title", "value", "threshold", "state", "severity" FROM "alarms" '
             f"WHERE $timeFilter AND {' AND '.join(where)}")
    return (gdb.AnnotationQuery().name("告警：" + "、".join(rules)).datasource(datasource_ref())
            .enable(True).hide(True).icon_color("red")
            .target(q(query, "Anno", table_format=True))
            .filter(gdb.AnnotationPanelFilter().ids(panel_ids))
            .mappings({"text": _Built(gm.AnnotationEventFieldMapping(source="field",
                                                                      value="title")),
                       "tags": _Built(gm.AnnotationEventFieldMapping(source="field",
                                                                      value="state"))}))
