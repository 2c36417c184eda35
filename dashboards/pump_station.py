"""扬水站: per station the sump level against its alarm bands, each pump's run state, motor
current, frequency, outlet pressure and flow, starts and run hours per day, stations side by
side, and a long-range view from the hourly aggregates."""

from __future__ import annotations

from dashboards import common as c
from dashboards.influxql import InfluxQL
from device_profiles.schema import DataType, Point, Profile, ProfileSet

DOMAIN = "pump_station"
WHERE = f"$timeFilter AND {c.place_filter('town', 'site', 'device')}"


def _running(profile: Profile, point: Point) -> bool:
    return point.type == DataType.bool and point.name.endswith("_running")


def _by_unit(unit: str):  # type: ignore[no-untyped-def]
    return lambda _profile, point: point.unit == unit and point.type != DataType.bool


def _series(points: list[Point], function: str = "mean") -> InfluxQL:
    return c.q(f'SELECT {c.field_list(points, function)} FROM "{DOMAIN}" WHERE {WHERE} '
               f'GROUP BY time($__interval), "site" fill(none)', alias="$tag_site $col")


def build(profiles: ProfileSet) -> c.Board:
    pumps = c.domain_profiles(profiles, DOMAIN)
    board = c.Board(c.UIDS[DOMAIN], "扬水站", "各扬水站集水池水位、水泵运行与电气参数、出水压力与"
                    "流量、每日启动次数与运行时长。", domain=DOMAIN,
                    variables=c.place_variables(DOMAIN),
                    links=[c.dashboard_link("城市运行总览", c.UIDS["overview"]),
                           c.dashboard_link("设备与网关", c.UIDS["devices"])])
    board.row("实时运行")
    for profile in pumps:
        for point in profile.points:
            thresholds = c.thresholds_for(profile, point.name)
            if thresholds is None or point.type == DataType.bool:
                continue
            rules = [r.id for r in c.rules_on(profile, point.name)]
            board.add(c.ts_panel(
                c.short_label(point), f"各站{c.short_label(point)}，色带为告警区间。"
                f"{c.threshold_text(profile, point.name)}", c.point_unit(point),
                _series([point]), thresholds=thresholds, w=24), rules)
    running = c.points_where(pumps, _running)
    if running:
        board.add(c.state_panel(
            "水泵运行状态", "每台水泵的运行（绿）与停止（灰）时段。",
            c.q(f'SELECT {c.field_list(running, "last")} FROM "{DOMAIN}" WHERE {WHERE} '
                f'GROUP BY time($__interval), "site" fill(previous)', alias="$tag_site $col"),
            texts={"true": ("运行", "green"), "false": ("停止", "#8e8e8e")}),
            [r.id for p in pumps for r in p.alarms if r.points()[0].endswith("_fault")])
    for unit, title in (("A", "电机电流"), ("Hz", "运行频率"), ("MPa", "出水压力"),
                        ("m³/h", "瞬时流量")):
        points = c.points_where(pumps, _by_unit(unit))
        if not points:
            continue
        rules = [r.id for p in pumps for pt in points for r in c.rules_on(p, pt.name)]
        names = "、".join(c.short_label(p) for p in points)
        board.add(c.ts_panel(title, f"各站{title}（{names}）。", c.point_unit(points[0]),
                             _series(points), w=12), rules)
    board.row("每日统计")
    if running:
        board.add(c.ts_panel(
            "每日启动次数", "每台水泵每天由停止转为运行的次数（state_changes，按北京时间分日）。",
            "none", c.q(
                f'SELECT count("value") FROM "state_changes" WHERE {WHERE} '
                f"AND \"domain\" = '{DOMAIN}' "
                f'AND "point" =~ {c.regex_of(p.name for p in running)} '
                f'AND "value" = true GROUP BY "site", "point", {c.DAILY}',
                alias="$tag_site $tag_point"), bars=True, w=12))
        board.add(c.ts_panel(
            "每日运行小时", "每台水泵每天的运行小时数（1 分钟聚合中处于运行的分钟数 ÷ 60）。",
            "h", *[c.q(
                f'SELECT count("last_{p.name}") / 60 AS "{c.short_label(p)}" '
                f'FROM "rp_1m"."{DOMAIN}" '
                f'WHERE {WHERE} AND "last_{p.name}" = true GROUP BY "site", {c.DAILY}',
                ref=chr(ord("A") + i), alias="$tag_site $col") for i, p in enumerate(running)],
            bars=True, w=12))
    compare = [p for profile in pumps for p in profile.points if p.type != DataType.bool
               and p.unit in ("m", "MPa", "m³/h", "A")]
    board.row("站点对比")
    board.add(c.table_panel(
        "各站当前状态", "每个扬水站最新的水位、压力、流量与电流；点击站点查看该站。", "none",
        c.q(f'SELECT {c.field_list(compare, "last")} FROM "{DOMAIN}" WHERE {WHERE} '
            f'GROUP BY "site", "device"', table_format=True),
        w=24, links=[c.drilldown("查看该站", c.UIDS[DOMAIN], "site", "site")]))
    board.row("长期趋势（1 小时聚合）")
    level = [p for profile in pumps for p in profile.points
             if p.unit == "m" and c.limit_rules(profile, p.name)]
    for point in level or compare[:1]:
        board.add(c.ts_panel(
            f"{c.short_label(point)}长期趋势", f"来自 1 小时聚合（rp_1h）的平均与最高"
            f"{c.short_label(point)}，适合查看数月到数年的变化。", c.point_unit(point),
            c.q(f'SELECT mean("mean_{point.name}") AS "平均", max("max_{point.name}") AS "最高" '
                f'FROM "rp_1h"."{DOMAIN}" WHERE {WHERE} GROUP BY time($__interval), "site" '
                "fill(none)", alias="$tag_site $col"), interval="1h", w=24))
    flow = [p for profile in pumps for p in profile.points if p.unit == "m³"]
    for point in flow:
        board.add(c.ts_panel(
            "每日排水量", f"每天的{c.short_label(point)}增量（1 小时聚合的最大累计值之差）。",
            c.point_unit(point),
            c.q(f'SELECT spread("max_{point.name}") FROM "rp_1h"."{DOMAIN}" WHERE {WHERE} '
                f'GROUP BY "site", {c.DAILY}', alias="$tag_site"), bars=True, w=24))
    return board
