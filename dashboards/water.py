"""水表与水利: flow and cumulative volume, consumption per day, minimum night flow per meter
against its leak limit (the night-flow rule of its profile), battery, valve state, silent
meters."""

from __future__ import annotations

from dashboards import common as c
from device_profiles.rules import NightFlowAlarm
from device_profiles.schema import DataType, ProfileSet

DOMAIN = "water"
WHERE = f"$timeFilter AND {c.place_filter('town', 'site', 'device')}"


def build(profiles: ProfileSet) -> c.Board:
    meters = c.domain_profiles(profiles, DOMAIN)
    board = c.Board(c.UIDS[DOMAIN], "水表与水利", "各水表的瞬时流量、累计水量与每日用水量，"
                    "最小夜间流量对照漏损限值，电池、阀门状态与失联水表。", domain=DOMAIN,
                    variables=c.place_variables(DOMAIN), time_from="now-24h",
                    links=[c.dashboard_link("城市运行总览", c.UIDS["overview"]),
                           c.dashboard_link("设备与网关", c.UIDS["devices"])])
    night = [(p, r) for p in meters for r in p.alarms if isinstance(r, NightFlowAlarm)]
    volumes = c.points_where(meters, lambda p, pt: any(r.point == pt.name for q, r in night
                                                        if q is p))
    flows = c.points_where(meters, lambda _p, pt: pt.unit == "m³/h")
    board.row("用水量")
    for point in flows:
        board.add(c.ts_panel(
            c.short_label(point), f"各水表上报的{c.short_label(point)}。", c.point_unit(point),
            c.q(f'SELECT mean("{point.name}") FROM "{DOMAIN}" WHERE {WHERE} '
                f'GROUP BY time($__interval), "device" fill(none)', alias="$tag_device"), w=12))
    if volumes:
        board.add(c.ts_panel(
            "累计水量", "各水表的累计读数（不同型号的累计量测点）。", "m3",
            c.q(f'SELECT {c.field_list(volumes, "last")} FROM "{DOMAIN}" WHERE {WHERE} '
                f'GROUP BY time($__interval), "device" fill(none)', alias="$tag_device $col"),
            w=12))
        daily = ", ".join(f'spread("max_{p.name}") AS "{c.short_label(p)}"' for p in volumes)
        board.add(c.ts_panel(
            "每日用水量",
            "每个水表每天的用水量：当天累计读数的增量（1 小时聚合 rp_1h，按北京时间分日）。",
            "m3", c.q(f'SELECT {daily} FROM "rp_1h"."{DOMAIN}" WHERE {WHERE} '
                      f'GROUP BY "device", {c.DAILY}', alias="$tag_device $col"),
            bars=True, w=24))
    board.row("漏损监测")
    for profile, rule in night:
        point = profile.point(rule.point)
        board.add(c.ts_panel(
            f"最小流量（{profile.model.split(' ')[0]}）",
            f"型号 {profile.id} 的水表每天的最小流量（由{c.short_label(point)}求导，"
            f"m³/h），对照漏损限值 {rule.raise_at:g} m³/h（规则 {rule.id}，夜间 "
            f"{rule.window_start}–{rule.window_end} 持续超过即告警）。", "suffix:m³/h",
            c.q(f'SELECT min("flow") FROM (SELECT non_negative_derivative(last("{point.name}"), '
                f'1h) AS "flow" FROM "{DOMAIN}" WHERE {WHERE} AND "profile" = \'{profile.id}\' '
                f'GROUP BY time($__interval), "device" fill(none)) WHERE $timeFilter '
                f'GROUP BY "device", {c.DAILY}', alias="$tag_device"),
            thresholds=_leak_thresholds(rule.raise_at), bars=True, w=12), [rule.id])
    board.row("电池与阀门")
    for profile in meters:
        for point in profile.points:
            if point.name == "battery" and point.type != DataType.bool:
                board.add(c.bar_gauge_panel(
                    f"电池电量（{profile.model.split(' ')[0]}）", "各水表最新电池电量。"
                    f"{c.threshold_text(profile, point.name)}", c.point_unit(point),
                    c.q(f'SELECT last("{point.name}") FROM "{DOMAIN}" WHERE {WHERE} '
                        f"AND \"profile\" = '{profile.id}' GROUP BY \"device\"",
                        alias="$tag_device"),
                    thresholds=c.thresholds_for(profile, point.name), minimum=0, maximum=100),
                    [r.id for r in c.rules_on(profile, point.name)])
    valves = c.points_where(meters, lambda _p, pt: pt.name.startswith("valve")
                            or pt.name == "battery_low")
    texts: dict[str, tuple[str, str]] = {"true": ("是", "red"), "false": ("否", "green")}
    for point in valves:
        colours = ["#8e8e8e", "green", "blue", "red"]
        texts.update({code: (text, colours[int(code) % 4])
                      for code, text in c.value_texts(point).items()})
    board.add(c.state_panel(
        "阀门与电池状态", "各水表的阀门状态、阀门开启/异常与电池欠压（数值的含义来自设备模型）。",
        c.q(f'SELECT {c.field_list(valves, "last")} FROM "{DOMAIN}" WHERE {WHERE} '
            f'GROUP BY time($__interval), "device" fill(previous)', alias="$tag_device $col"),
        w=16, h=10, texts=texts),
        [r.id for p in meters for r in p.alarms if set(r.points()) & {v.name for v in valves}])
    board.row("失联水表")
    board.add(c.table_panel(
        "水表在线情况", "每个水表最近一次健康检查：是否在线、已静默多久、最后上报时间。", "none",
        c.q(f'SELECT last("online") AS "在线", last("silent_s") AS "静默秒数", '
            f'last("last_seen") AS "最后上报" FROM "device_health" WHERE {WHERE} '
            f"AND \"domain\" = '{DOMAIN}' GROUP BY \"site\", \"device\"", table_format=True),
        w=24, sort_by=("静默秒数", True),
        overrides={"静默秒数": [c.gm.DynamicConfigValue(id_val="unit", value="s")],
                   "最后上报": [c.gm.DynamicConfigValue(id_val="unit", value="dateTimeAsIso")]}))
    return board


def _leak_thresholds(limit: float) -> c.gdb.ThresholdsConfig:
    return c.gdb.ThresholdsConfig().mode(c.gm.ThresholdsMode.ABSOLUTE).steps([
        c.gm.Threshold(value=None, color="green"), c.gm.Threshold(value=limit, color="red")])
