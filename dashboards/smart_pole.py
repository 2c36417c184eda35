"""智慧灯杆: lamps on, dimming, power and energy per day per lighting circuit (a street's poles
on one gateway: the `site`), failed lamps, the environment against the national limits, and
emergency calls."""

from __future__ import annotations

from dashboards import common as c
from device_profiles.schema import DataType, ProfileSet

DOMAIN = "smart_pole"
WHERE = f"$timeFilter AND {c.place_filter('town', 'site', 'device')}"
ENVIRONMENT = ("pm25", "pm10", "noise", "temperature", "humidity")


def build(profiles: ProfileSet) -> c.Board:
    poles = c.domain_profiles(profiles, DOMAIN)
    board = c.Board(c.UIDS[DOMAIN], "智慧灯杆", "各照明回路（路段）的亮灯、调光、功率与每日电量，"
                    "故障灯具，环境监测对照国家标准限值，一键报警。", domain=DOMAIN,
                    variables=c.place_variables(DOMAIN),
                    links=[c.dashboard_link("城市运行总览", c.UIDS["overview"]),
                           c.dashboard_link("设备与网关", c.UIDS["devices"])])
    lamp = c.points_where(poles, lambda _p, pt: pt.name == "lamp_on")
    board.row("照明")
    if lamp:
        board.add(c.stat_panel(
            "亮灯数", "当前处于开灯状态的灯杆数（各灯杆最新一次读数）。", "none",
            c.q(f'SELECT count("lamp") FROM (SELECT last("lamp_on") AS "lamp" FROM "{DOMAIN}" '
                f'WHERE {WHERE} GROUP BY "device") WHERE "lamp" = true')))
    failed = [r.id for p in poles for r in p.alarms if r.id == "lamp_failed"]
    board.add(c.stat_panel(
        "故障灯具", "开灯状态下功率过低、被规则引擎判为灯具故障且尚未恢复的灯杆数。", "none",
        c.q(f'SELECT sum("active") FROM (SELECT last("active") AS "active" FROM "alarm_summary" '
            f"WHERE $timeFilter AND \"domain\" = '{DOMAIN}' AND {c.place_filter('town', 'site')} "
            f'AND "rule" =~ {c.regex_of(failed or ["lamp_failed"])} GROUP BY "site", "rule")'),
        thresholds=c.status_thresholds()), failed)
    calls = [r.id for p in poles for r in p.alarms if r.points() == ["emergency_button"]]
    board.add(c.stat_panel(
        "一键报警次数", "所选时段内一键报警按钮被按下的次数。", "none",
        c.q(f'SELECT count("value") FROM "state_changes" WHERE {WHERE} '
            f"AND \"domain\" = '{DOMAIN}' AND \"point\" = 'emergency_button' "
            'AND "value" = true')),
        calls)
    dimming = c.points_where(poles, lambda _p, pt: pt.unit == "%" and pt.name == "dimming")
    for point in dimming:
        board.add(c.ts_panel(
            "平均调光比例", "各路段灯杆的平均调光比例。", c.point_unit(point),
            c.q(f'SELECT mean("{point.name}") FROM "{DOMAIN}" WHERE {WHERE} '
                f'GROUP BY time($__interval), "site" fill(none)', alias="$tag_site"), w=6, h=4))
    power = c.points_where(poles, lambda _p, pt: pt.unit == "W")
    for point in power:
        board.add(c.ts_panel(
            "回路功率", f"每个照明回路（路段）所有灯杆{c.short_label(point)}之和。",
            c.point_unit(point),
            c.q(f'SELECT sum("p") FROM (SELECT mean("{point.name}") AS "p" FROM "{DOMAIN}" '
                f'WHERE {WHERE} GROUP BY time($__interval), "device", "site" fill(none)) '
                f'WHERE $timeFilter GROUP BY time($__interval), "site" fill(none)',
                alias="$tag_site"), w=12))
    energy = c.points_where(poles, lambda _p, pt: pt.unit == "kWh")
    for point in energy:
        board.add(c.ts_panel(
            "回路每日电量",
            f"每个照明回路每天的用电量：各灯杆{c.short_label(point)}在当天的增量之和"
            "（来自 1 小时聚合 rp_1h）。", c.point_unit(point),
            c.q(f'SELECT sum("e") FROM (SELECT spread("max_{point.name}") AS "e" '
                f'FROM "rp_1h"."{DOMAIN}" WHERE {WHERE} GROUP BY "device", "site", {c.DAILY}) '
                f'WHERE $timeFilter GROUP BY "site", {c.DAILY}', alias="$tag_site"),
            bars=True, w=12))
    board.row("环境监测")
    for profile in poles:
        for point in profile.points:
            if point.name not in ENVIRONMENT or point.type == DataType.bool:
                continue
            rules = [r.id for r in c.rules_on(profile, point.name)]
            board.add(c.ts_panel(
                c.short_label(point), f"各路段平均{c.short_label(point)}。"
                f"{c.threshold_text(profile, point.name)}", c.point_unit(point),
                c.q(f'SELECT mean("{point.name}") FROM "{DOMAIN}" WHERE {WHERE} '
                    f'GROUP BY time($__interval), "site" fill(none)', alias="$tag_site"),
                thresholds=c.thresholds_for(profile, point.name), w=12), rules)
    board.row("灯杆明细")
    latest = [pt for p in poles for pt in p.points
              if pt.name in ("dimming", "active_power", "voltage", "pm25", "noise", "tilt")]
    board.add(c.table_panel(
        "灯杆最新读数", "每根灯杆最新的调光、功率、电压、PM2.5、噪声与倾角；点击查看该灯杆。",
        "none",
        c.q(f'SELECT {c.field_list(latest, "last")} FROM "{DOMAIN}" WHERE {WHERE} '
            f'GROUP BY "site", "device"', table_format=True),
        w=24, h=10, links=[c.drilldown("查看该灯杆", c.UIDS[DOMAIN], "device", "device")]))
    return board
