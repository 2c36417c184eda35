"""智慧消防: fire alarm and fault states per site, hydrant pressure against its low limit,
residual current and cable temperatures of electrical-fire monitors, gas concentration, and the
devices (reported through transmission devices or LoRaWAN) that went silent."""

from __future__ import annotations

from dashboards import common as c
from device_profiles.rules import StateAlarm
from device_profiles.schema import DataType, ProfileSet

DOMAIN = "fire"
WHERE = f"$timeFilter AND {c.place_filter('town', 'site', 'device')}"


def build(profiles: ProfileSet) -> c.Board:
    fire = c.domain_profiles(profiles, DOMAIN)
    board = c.Board(c.UIDS[DOMAIN], "智慧消防", "各场所火警与故障状态、消火栓水压、电气火灾监测、"
                    "可燃气体浓度，以及失联的消防设备。", domain=DOMAIN,
                    variables=c.place_variables(DOMAIN),
                    links=[c.dashboard_link("城市运行总览", c.UIDS["overview"]),
                           c.dashboard_link("设备与网关", c.UIDS["devices"])])
    board.row("报警与故障")
    state_rules = [(p, r) for p in fire for r in p.alarms if isinstance(r, StateAlarm)]
    states = c.points_where([p for p, _r in state_rules],
                            lambda p, pt: any(r.point == pt.name for q, r in state_rules if q is p))
    board.add(c.stat_panel(
        "活动消防告警", "规则引擎当前未恢复的消防告警数（火警、故障、压力、浓度等）。", "none",
        c.q(f'SELECT sum("active") FROM (SELECT last("active") AS "active" FROM "alarm_summary" '
            f"WHERE $timeFilter AND \"domain\" = '{DOMAIN}' AND {c.place_filter('town', 'site')} "
            f'GROUP BY "site", "rule", "severity")'), thresholds=c.status_thresholds(), w=6))
    board.add(c.state_panel(
        "火警与故障状态", "每个消防设备的报警、故障、屏蔽、防拆等状态位（红：是）。按设备分行。",
        c.q(f'SELECT {c.field_list(states, "last")} FROM "{DOMAIN}" WHERE {WHERE} '
            f'GROUP BY time($__interval), "site", "device" fill(previous)',
            alias="$tag_device $col"), w=18, h=10),
        [r.id for _p, r in state_rules])
    board.row("水压与电气火灾")
    for profile in fire:
        for point in profile.points:
            if point.type == DataType.bool:
                continue
            thresholds = c.thresholds_for(profile, point.name)
            if thresholds is None:
                continue
            rules = [r.id for r in c.rules_on(profile, point.name)]
            board.add(c.ts_panel(
                f"{c.short_label(point)}（{profile.model.split(' ')[0]}）",
                f"型号 {profile.id} 的{c.short_label(point)}，按设备。"
                f"{c.threshold_text(profile, point.name)}", c.point_unit(point),
                c.q(f'SELECT mean("{point.name}") FROM "{DOMAIN}" WHERE {WHERE} '
                    f"AND \"profile\" = '{profile.id}' GROUP BY time($__interval), \"device\" "
                    "fill(none)", alias="$tag_device"), thresholds=thresholds, w=12), rules)
    board.row("失联设备")
    board.add(c.table_panel(
        "消防设备在线情况", "每个消防设备最近一次健康检查：是否在线、已静默多久、活动告警数。"
        "经用户信息传输装置或 LoRaWAN 上报的设备长时间静默即为失联。", "none",
        c.q(f'SELECT last("online") AS "在线", last("silent_s") AS "静默秒数", '
            f'last("active_alarms") AS "活动告警" FROM "device_health" WHERE {WHERE} '
            f"AND \"domain\" = '{DOMAIN}' GROUP BY \"site\", \"device\", \"gateway\"",
            table_format=True),
        w=24, sort_by=("静默秒数", True),
        overrides={"静默秒数": [c.gm.DynamicConfigValue(id_val="unit", value="s")],
                   "在线": [c.gm.DynamicConfigValue(id_val="mappings", value=[c.value_map(
                       {"1": ("在线", "green"), "0": ("离线", "red")}).to_json()])]}))
    return board
