"""城市运行总览: the operations centre's big screen — devices online and data availability per
domain, active alarms by severity, open and overdue events, the five assessment rates, a map of
every device coloured by status, and the worst devices; each domain one click away."""

from __future__ import annotations

from dashboards import common as c
from dashboards.events import RATES
from device_profiles.schema import ProfileSet

WHERE = f"$timeFilter AND {c.place_filter('domain', 'town')}"


def _domain_names(panel: object) -> object:
    for domain, label in c.DOMAIN_LABELS.items():
        panel = panel.override_by_name(  # type: ignore[attr-defined]
            domain, [c.gm.DynamicConfigValue(id_val="displayName", value=label)])
    return panel


def build(profiles: ProfileSet) -> c.Board:
    domains = sorted({str(p.domain) for p in profiles.profiles.values()})
    links = [c.dashboard_link(c.DOMAIN_LABELS.get(d, d), c.UIDS[d]) for d in domains]
    links += [c.dashboard_link("设备与网关", c.UIDS["devices"]),
              c.dashboard_link("事件中心", c.UIDS["events"])]
    board = c.Board(c.UIDS["overview"], "城市运行总览",
                    "数字东昌城市运行：各领域设备在线与数据完整率、活动告警、事件与考核五率、"
                    "设备地图与最差设备。", domain=None,
                    variables=c.place_variables(None)[:3], links=links, time_from="now-6h")
    board.row("设备与告警")
    board.add(_domain_names(c.bar_gauge_panel(
        "在线设备", "各业务领域当前在线的设备数（最近一次健康检查）。", "none",
        c.q('SELECT sum("online") FROM (SELECT last("online") AS "online" FROM "device_health" '
            f'WHERE {WHERE} GROUP BY "device", "domain") GROUP BY "domain"',
            alias="$tag_domain"), w=8, h=7)))
    board.add(_domain_names(c.bar_gauge_panel(
        "数据完整率", "所选时段内各领域设备处于在线（按时上报）的时间占比。", "percent",
        c.q(f'SELECT mean("online") * 100 FROM "device_health" WHERE {WHERE} GROUP BY "domain"',
            alias="$tag_domain"), w=8, h=7, minimum=0, maximum=100,
        thresholds=c.gdb.ThresholdsConfig().mode(c.gm.ThresholdsMode.ABSOLUTE).steps([
            c.gm.Threshold(value=None, color="red"), c.gm.Threshold(value=90, color="orange"),
            c.gm.Threshold(value=98, color="green")]))))
    severity = c.bar_gauge_panel(
        "活动告警", "规则引擎当前未恢复的告警，按级别。", "none",
        c.q('SELECT sum("active") FROM (SELECT last("active") AS "active" FROM "alarm_summary" '
            f'WHERE {WHERE} GROUP BY "domain", "town", "site", "rule", "severity") '
            'GROUP BY "severity"', alias="$tag_severity"), w=8, h=7)
    for level, label in c.SEVERITY_LABELS.items():
        severity = severity.override_by_name(str(level), [
            c.gm.DynamicConfigValue(id_val="displayName", value=label),
            c.gm.DynamicConfigValue(id_val="color", value={
                "mode": "fixed", "fixedColor": c.SEVERITY_COLORS[level]})])
    board.add(severity)
    board.row("事件与考核")
    board.add(c.stat_panel(
        "未结事件", "本月上报、尚未结案的事件（事件中心，全部部门）。", "none",
        c.q('SELECT last("open") FROM "event_centre" WHERE $timeFilter '
            "AND \"department\" = 'all' AND \"period\" = 'month'"), w=4))
    board.add(c.stat_panel(
        "超期事件", "本月上报、超过处置时限未处置的事件。", "none",
        c.q('SELECT last("overdue") FROM "event_centre" WHERE $timeFilter '
            "AND \"department\" = 'all' AND \"period\" = 'month'"),
        thresholds=c.status_thresholds(), w=4))
    rates = ", ".join(f'last("{name}") AS "{label}"' for name, label in RATES)
    board.add(c.stat_panel(
        "考核五率（本月）", "智能发现率、派遣率、处置率、结案率、按期处置率（全部部门，本月）。",
        "percent", c.q(f'SELECT {rates} FROM "event_centre" WHERE $timeFilter '
                       "AND \"department\" = 'all' AND \"period\" = 'month'"), w=16))
    board.row("设备地图")
    board.add(c.device_map(
        "设备分布与状态", "每个设备的位置，绿色正常、红色告警、灰色离线（最近一次健康检查）。",
        c.q('SELECT last("lat") AS "lat", last("lon") AS "lon", last("status") AS "status" '
            f'FROM "device_health" WHERE {WHERE} GROUP BY "device", "domain", "site"',
            table_format=True), w=16, h=14))
    board.add(c.table_panel(
        "最差设备", "所选时段在线率最低、告警最多的设备；点击查看该设备的在线明细。", "none",
        c.q('SELECT mean("online") * 100 AS "在线率", max("active_alarms") AS "最多告警", '
            f'last("status") AS "状态" FROM "device_health" WHERE {WHERE} '
            'GROUP BY "domain", "site", "device"', table_format=True),
        w=8, h=14, sort_by=("在线率", False),
        links=[c.drilldown("查看该设备", c.UIDS["devices"], "device", "device")],
        overrides={"在线率": [c.gm.DynamicConfigValue(id_val="unit", value="percent")],
                   "状态": [c.gm.DynamicConfigValue(id_val="mappings", value=[c.value_map(
                       {str(k): v for k, v in c.STATUS_TEXTS.items()}).to_json()])]}))
    return board
