"""Interlocks of the shipped pump station profile trip and pass at their boundaries; parameters
are validated first; stops and resets are never held back by an interlock."""

from __future__ import annotations

from collections.abc import Callable

from device_profiles.commands import STALE_READING_ZH
from device_profiles.schema import Profile
from edge_agent.commands.history import DeviceHistory
from edge_agent.commands.interlocks import check, record_execution

NAME = "1号扬水站"
Station = Callable[..., DeviceHistory]


def _start(pump: Profile, history: DeviceHistory, now: int, which: int = 1):
    return check(pump, f"pump{which}_start", {}, history, now, device_name=NAME)


def test_a_quiet_full_station_may_start_a_pump(pump: Profile, station: Station, now: int) -> None:
    verdict = _start(pump, station(), now)
    assert verdict.ok and verdict.interlock is None and verdict.params == {}


def test_dry_sump_refuses_a_start_naming_the_interlock_and_the_level(
        pump: Profile, station: Station, now: int) -> None:
    verdict = _start(pump, station([(30, {"sump_level": 0.29})]), now)
    assert not verdict.ok
    assert (verdict.interlock, verdict.value, verdict.limit) == ("sump_not_dry", 0.29, 0.3)
    assert verdict.message_zh == "1号扬水站集水池水位 0.29 m 低于干转保护水位 0.30 m，禁止启泵"
    assert "sump_level 0.29 m fails >= 0.3" in verdict.reason_en
    assert _start(pump, station([(30, {"sump_level": 0.3})]), now).ok  # the limit itself passes


def test_a_stale_or_missing_reading_refuses(pump: Profile, station: Station, now: int) -> None:
    stale = _start(pump, station(last_age_s=15.001), now)
    assert not stale.ok and stale.interlock == "sump_not_dry"
    assert stale.value == 15.001 and stale.limit == 15
    assert stale.message_zh == STALE_READING_ZH.format(
        device=NAME, interlock="sump_not_dry", label="集水池水位", max_age_s=15)
    assert "集水池水位读数缺失或已超过 15 秒未更新" in stale.message_zh
    assert _start(pump, station(last_age_s=15.0), now).ok

    no_level = DeviceHistory("pump-station-01")
    no_level.observe(now - 7_200_000, {"pump1_running": False, "pump2_running": False})
    no_level.observe(now - 1000, {"pump1_running": False, "pump2_running": False})
    missing = _start(pump, no_level, now)
    assert not missing.ok and missing.interlock == "sump_not_dry" and missing.value is None
    assert "读数缺失" in missing.message_zh and "no reading" in missing.reason_en


def test_stale_run_state_refuses_a_bool_interlock(pump: Profile, now: int) -> None:
    history = DeviceHistory("pump-station-01")
    history.observe(now - 7_200_000, {"pump1_running": False, "pump2_running": False})
    history.observe(now - 1000, {"sump_level": 2.0})  # the level is fresh, the run states not
    verdict = _start(pump, history, now)
    assert not verdict.ok and verdict.interlock == "pump1_min_off_time"
    assert "1号泵运行读数缺失或已超过 15 秒未更新" in verdict.message_zh


def test_min_off_time_between_stop_and_start(pump: Profile, station: Station, now: int) -> None:
    too_soon = _start(pump, station([(400, {"pump1_running": True}),
                                     (299, {"pump1_running": False})]), now)
    assert not too_soon.ok and too_soon.interlock == "pump1_min_off_time"
    assert (too_soon.value, too_soon.limit) == (299, 300)
    assert too_soon.message_zh == "1号扬水站1号泵停机仅 299 秒，需间隔 300 秒后方可再次启动"
    rested = station([(400, {"pump1_running": True}), (300, {"pump1_running": False})])
    assert _start(pump, rested, now).ok
    # The other pump's off time is its own.
    assert _start(pump, station([(400, {"pump1_running": True}),
                                 (299, {"pump1_running": False})]), now, which=2).ok


def test_min_off_time_after_the_edge_just_started_watching(pump: Profile, now: int) -> None:
    """No stop seen, but the edge has watched the pump off only 100 s: too recent to know."""
    history = DeviceHistory("pump-station-01")
    quiet = {"sump_level": 2.0, "pump1_running": False, "pump2_running": False}
    history.observe(now - 100_000, quiet)
    history.observe(now - 1000, quiet)
    verdict = _start(pump, history, now)
    assert not verdict.ok and verdict.interlock == "pump1_min_off_time" and verdict.value == 100


def _starts(first_ago_s: float) -> list[tuple[float, dict[str, object]]]:
    """Six one-minute runs of pump 1, ten minutes apart, the first `first_ago_s` ago."""
    events: list[tuple[float, dict[str, object]]] = []
    for i in range(6):
        at = first_ago_s - i * 600
        events += [(at, {"pump1_running": True}), (at - 60, {"pump1_running": False})]
    return events


def test_seventh_start_in_an_hour_is_refused(pump: Profile, station: Station, now: int) -> None:
    verdict = _start(pump, station(_starts(3599.999)), now)
    assert not verdict.ok and verdict.interlock == "pump1_max_starts"
    assert (verdict.value, verdict.limit) == (6, 6)
    assert verdict.message_zh == "1号扬水站1号泵近一小时已启动 6 次，达到上限 6 次"
    # The first start exactly an hour ago has left the window: five in the hour, one more is ok.
    assert _start(pump, station(_starts(3600)), now).ok


def test_commanded_starts_count_once_with_the_start_the_readings_show(
        pump: Profile, station: Station, now: int) -> None:
    history = station(_starts(3590)[:10], last_age_s=1001)  # five runs, the last stop 1140 s ago
    assert record_execution(pump, "pump1_start", history, now - 1_000_000) == ["pump1_running"]
    running = {"sump_level": 2.0, "pump1_running": True, "pump2_running": False}
    history.observe(now - 995_000, running)  # the same start, seen by the next poll
    history.observe(now - 900_000, {**running, "pump1_running": False})
    history.observe(now - 1000, {**running, "pump1_running": False})
    verdict = _start(pump, history, now)
    assert not verdict.ok and verdict.interlock == "pump1_max_starts" and verdict.value == 6


def test_second_pump_within_ten_seconds_is_refused(pump: Profile, station: Station,
                                                   now: int) -> None:
    verdict = _start(pump, station([(9.999, {"pump2_running": True})]), now)
    assert not verdict.ok and verdict.interlock == "pumps_stagger"
    assert (verdict.value, verdict.limit) == (9.999, 10)
    assert verdict.message_zh == "1号扬水站2号泵运行10 秒前刚启动，两台泵启动需间隔 10 秒"
    assert _start(pump, station([(10, {"pump2_running": True})]), now).ok


def test_a_commanded_start_staggers_before_any_poll_shows_it(pump: Profile, station: Station,
                                                             now: int) -> None:
    history = station()
    assert record_execution(pump, "pump2_start", history, now - 3000) == ["pump2_running"]
    verdict = _start(pump, history, now)
    assert not verdict.ok and verdict.interlock == "pumps_stagger" and verdict.value == 3
    assert "2号泵运行" in verdict.message_zh
    assert record_execution(pump, "pump2_stop", history, now) == []  # a stop starts nothing


def test_stop_and_reset_are_never_held_back(pump: Profile, station: Station, now: int) -> None:
    dry_and_stale = station([(60, {"sump_level": 0.1, "pump1_running": True})], last_age_s=600)
    for command in ("pump1_stop", "pump2_stop", "fault_reset"):
        assert check(pump, command, {}, dry_and_stale, now).ok


def test_dimming_out_of_range_is_rejected_naming_the_parameter(pole: Profile, now: int) -> None:
    history = DeviceHistory("pole-0001")
    for level in (101, -1, 100.5):
        verdict = check(pole, "set_dimming", {"level": level}, history, now,
                        device_name="1号路灯")
        assert not verdict.ok and verdict.parameter == "level" and verdict.interlock is None
        assert verdict.message_zh.startswith("1号路灯调光被拒绝：调光比例")
    over = check(pole, "set_dimming", {"level": 101}, history, now)
    assert "调光比例 101% 超出允许范围 0–100%" in over.message_zh
    assert "level 101 is outside 0..100 %" in over.reason_en
    missing = check(pole, "set_dimming", {}, history, now)
    assert not missing.ok and missing.parameter == "level" and "缺少参数" in missing.message_zh
    assert check(pole, "set_dimming", {"level": 100}, history, now).params == {"level": 100}
    assert check(pole, "set_dimming", {"level": 0.0}, history, now).params == {"level": 0}
    unknown = check(pole, "lamp_on", {"level": 5}, history, now)
    assert not unknown.ok and unknown.parameter == "level" and "未知参数" in unknown.message_zh


def test_an_unknown_command_is_rejected(pole: Profile, now: int) -> None:
    verdict = check(pole, "pump1_start", {}, DeviceHistory("pole-0001"), now)
    assert not verdict.ok and "不支持命令 pump1_start" in verdict.message_zh
    assert "set_dimming" in verdict.message_zh


def test_min_off_time_lets_a_running_pump_be_started_again(pump: Profile, station: Station,
                                                           now: int) -> None:
    """Stopped 150 s ago but running again now (started locally): the start changes nothing."""
    history = station([(200, {"pump1_running": True}), (150, {"pump1_running": False}),
                       (100, {"pump1_running": True})])
    assert _start(pump, history, now).ok
