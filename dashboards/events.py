"""事件中心: events by status and department, overdue events, and the assessment rates
(统一考核) per department and period, from the figures the event centre writes."""

from __future__ import annotations

from dashboards import common as c
from device_profiles.schema import ProfileSet

RATES = (("discovery_rate", "智能发现率"), ("dispatch_rate", "派遣率"),
         ("handling_rate", "处置率"), ("closure_rate", "结案率"), ("ontime_rate", "按期处置率"))
STATUSES = (("reported", "已上报"), ("accepted", "已受理"), ("dispatched", "已派遣"),
            ("handled", "已处置"), ("closed", "已结案"))
WHERE = "$timeFilter AND \"department\" =~ /^$department$/ AND \"period\" =~ /^$period$/"


def period_variable() -> c.gdb.CustomVariable:
    return (c.gdb.CustomVariable("period").label("考核周期").values("day,month")
            .current(c.gm.VariableOption(selected=True, text="month", value="month"))
            .description("day：今天；month：本月（北京时间）"))


def build(profiles: ProfileSet) -> c.Board:
    del profiles
    variables = [c.datasource_variable(),
                 c.tag_variable("department", "责任部门", "event_centre",
                                description="事件的责任部门（all 为全部部门合计）"),
                 period_variable()]
    board = c.Board(c.UIDS["events"], "事件中心", "城市事件管理：各状态与各部门的事件数、超期事件、"
                    "统一考核五率（按部门、按周期）。", variables=variables, time_from="now-24h",
                    links=[c.dashboard_link("城市运行总览", c.UIDS["overview"])])
    board.row("事件")
    fields = ", ".join(f'last("{name}") AS "{label}"' for name, label in STATUSES)
    board.add(c.stat_panel(
        "未结事件", "尚未结案的事件数（全部部门，所选周期内上报）。", "none",
        c.q('SELECT last("open") FROM "event_centre" WHERE $timeFilter '
            "AND \"department\" = 'all' AND \"period\" =~ /^$period$/"), w=4))
    board.add(c.stat_panel(
        "超期事件", "超过处置时限仍未处置（或超时后才处置）的事件数。", "none",
        c.q('SELECT last("overdue") FROM "event_centre" WHERE $timeFilter '
            "AND \"department\" = 'all' AND \"period\" =~ /^$period$/"),
        thresholds=c.status_thresholds(), w=4))
    board.add(c.table_panel(
        "各部门事件状态", "各责任部门在所选周期内上报的事件，当前处于各状态的数量。", "none",
        c.q(f'SELECT {fields}, last("overdue") AS "超期" FROM "event_centre" WHERE {WHERE} '
            'GROUP BY "department"', table_format=True), w=16))
    board.add(c.ts_panel(
        "超期事件趋势", "各部门超期事件数随时间的变化。", "none",
        c.q(f'SELECT last("overdue") FROM "event_centre" WHERE {WHERE} '
            'GROUP BY time($__interval), "department" fill(none)', alias="$tag_department"),
        w=12))
    board.add(c.ts_panel(
        "未结事件趋势", "各部门未结案事件数随时间的变化。", "none",
        c.q(f'SELECT last("open") FROM "event_centre" WHERE {WHERE} '
            'GROUP BY time($__interval), "department" fill(none)', alias="$tag_department"),
        w=12))
    board.row("统一考核")
    rates = ", ".join(f'last("{name}") AS "{label}"' for name, label in RATES)
    board.add(c.table_panel(
        "考核五率（按部门）", "智能发现率＝告警自动发现的事件 ÷ 全部事件；派遣率＝已派遣 ÷ 已受理；"
        "处置率＝已处置 ÷ 已派遣；结案率＝已结案 ÷ 全部；按期处置率＝时限内处置 ÷ 已处置。"
        "分母为 0 时不计。", "percent",
        c.q(f'SELECT {rates}, last("average_handling_minutes") AS "平均处置分钟" '
            f'FROM "event_centre" WHERE {WHERE} GROUP BY "department", "period"',
            table_format=True), w=24,
        overrides={"平均处置分钟": [c.gm.DynamicConfigValue(id_val="unit", value="m")]}))
    board.add(c.ts_panel(
        "考核五率趋势", "全部部门合计的考核五率随时间的变化。", "percent",
        c.q(f'SELECT {rates} FROM "event_centre" WHERE $timeFilter AND "department" = \'all\' '
            'AND "period" =~ /^$period$/ GROUP BY time($__interval) fill(none)'), w=24))
    return board
