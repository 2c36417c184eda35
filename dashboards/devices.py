"""设备与网关: gateways online and last seen, poll results and rejected frames by reason,
store-and-forward backlog, device availability, and the ingest's rate and write latency."""

from __future__ import annotations

from dashboards import common as c
from device_profiles.schema import ProfileSet

GATEWAYS = "$timeFilter AND \"gateway\" =~ /^$gateway$/"


def build(profiles: ProfileSet) -> c.Board:
    variables = c.place_variables(None)
    variables.append(c.tag_variable("gateway", "网关", "gateway_health",
                                    c.place_filter("town", "site")))
    board = c.Board(c.UIDS["devices"], "设备与网关", "边缘网关在线与最后通信、轮询结果与被拒帧、"
                    "断网缓存积压、设备在线率，以及云端接入速率与写入延迟。",
                    variables=variables, time_from="now-3h",
                    links=[c.dashboard_link("城市运行总览", c.UIDS["overview"])])
    board.row("网关")
    board.add(c.stat_panel(
        "在线网关", "最近一次健康检查时在线的边缘网关数。", "none",
        c.q('SELECT sum("online") FROM (SELECT last("online") AS "online" FROM "gateway_health" '
            f'WHERE {GATEWAYS} GROUP BY "gateway")'), w=4))
    board.add(c.stat_panel(
        "断网缓存积压", "所有网关磁盘缓存中尚未送达云端的读数之和（最新）。", "none",
        c.q('SELECT sum("backlog") FROM (SELECT last("backlog") AS "backlog" FROM '
            f'"gateway_health" WHERE {GATEWAYS} GROUP BY "gateway")'), w=4))
    board.add(c.table_panel(
        "网关状态", "每个网关是否在线、最后通信时间、缓存积压与因容量或时限丢弃的读数。", "none",
        c.q('SELECT last("online") AS "在线", last("last_seen") AS "最后通信", '
            'last("backlog") AS "缓存积压", last("dropped_total") AS "累计丢弃" '
            f'FROM "gateway_health" WHERE {GATEWAYS} GROUP BY "gateway", "town", "site"',
            table_format=True), w=16,
        overrides={"最后通信": [c.gm.DynamicConfigValue(id_val="unit", value="dateTimeAsIso")]}))
    board.add(c.ts_panel(
        "断网缓存积压", "各网关磁盘缓存中的读数（store-and-forward），上行中断时增长、恢复后回落。",
        "none", c.q(f'SELECT max("backlog") FROM "gateway_health" WHERE {GATEWAYS} '
                    'GROUP BY time($__interval), "gateway" fill(none)', alias="$tag_gateway"),
        w=12))
    board.add(c.ts_panel(
        "轮询结果", "各网关每个时间段的设备轮询次数，按结果（ok、timeout、error…）。", "none",
        c.q('SELECT non_negative_difference(last("total")) FROM "edge_counters" '
            f"WHERE {GATEWAYS} AND \"kind\" = 'poll' GROUP BY time($__interval), \"gateway\", "
            '"reason" fill(none)', alias="$tag_gateway $tag_reason"), bars=True, w=12))
    board.add(c.ts_panel(
        "被拒帧", "边缘网关拒收的报文（CRC/MIC 错误、重放、格式错误…），按协议与原因。", "none",
        c.q('SELECT non_negative_difference(last("total")) FROM "edge_counters" '
            f"WHERE {GATEWAYS} AND \"kind\" = 'rejected' GROUP BY time($__interval), \"gateway\", "
            '"reason" fill(none)', alias="$tag_gateway $tag_reason"), bars=True, w=12))
    board.row("设备")
    where = f"$timeFilter AND {c.place_filter('domain', 'town', 'site', 'device')}"
    board.add(c.ts_panel(
        "设备在线率", "各业务领域在线设备所占比例（每次健康检查的在线设备 ÷ 设备总数）。",
        "percent",
        c.q(f'SELECT mean("online") * 100 FROM "device_health" WHERE {where} '
            'GROUP BY time($__interval), "domain" fill(none)', alias="$tag_domain"), w=12))
    board.add(c.table_panel(
        "设备在线明细", "每个设备在所选时段的在线率、最后上报时间与当前状态；点击查看所属网关。",
        "none",
        c.q('SELECT mean("online") * 100 AS "在线率", last("last_seen") AS "最后上报", '
            f'last("status") AS "状态" FROM "device_health" WHERE {where} '
            'GROUP BY "domain", "site", "gateway", "device"', table_format=True),
        w=12, sort_by=("在线率", False),
        links=[c.drilldown("查看该网关", c.UIDS["devices"], "gateway", "gateway")],
        overrides={"在线率": [c.gm.DynamicConfigValue(id_val="unit", value="percent")],
                   "最后上报": [c.gm.DynamicConfigValue(id_val="unit", value="dateTimeAsIso")],
                   "状态": [c.gm.DynamicConfigValue(id_val="mappings", value=[c.value_map(
                       {str(k): v for k, v in c.STATUS_TEXTS.items()}).to_json()])]}))
    board.row("云端接入")
    board.add(c.ts_panel(
        "接入速率", "云端每秒收到的消息数、写入 InfluxDB 的点数与拒收的消息数。", "short",
        c.q('SELECT mean("messages_per_s") AS "消息/秒", mean("points_per_s") AS "写入点/秒", '
            'mean("rejected_per_s") AS "拒收/秒" FROM "ingest_stats" WHERE $timeFilter '
            "GROUP BY time($__interval) fill(none)"), w=12))
    board.add(c.ts_panel(
        "写入延迟", "每批写入 InfluxDB 的平均与最长耗时（成功写入后才向网关确认）。", "ms",
        c.q('SELECT mean("write_ms_mean") AS "平均", max("write_ms_max") AS "最长" '
            'FROM "ingest_stats" WHERE $timeFilter GROUP BY time($__interval) fill(none)'),
        w=12))
    del profiles
    return board
