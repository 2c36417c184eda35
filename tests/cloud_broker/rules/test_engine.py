"""Each rule kind raises and clears exactly once on a crafted series; pending durations;
silence; acknowledgement; persistence across a restart."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from cloud_broker.registry.devices import DeviceCatalogue, KnownDevice
from cloud_broker.rules.engine import AlarmEvent, RuleEngine
from cloud_broker.rules.store import AlarmStore
from device_profiles.rules import AlarmRule

RULE = TypeAdapter(AlarmRule)
T0 = 1_764_000_000_000


def _engine(store: AlarmStore | None = None) -> RuleEngine:
    counter = itertools.count(1)
    return RuleEngine(store, new_id=lambda: f"a{next(counter)}",
                      rules_for=lambda device: device.rules)


def _with_rule(device: KnownDevice, rule: dict[str, object]) -> KnownDevice:
    base = {"id": "r", "severity": "major", "title_zh": "{device}：{value}"}
    parsed = RULE.validate_python(base | rule)
    return KnownDevice(device.id, device.gateway, device.profile, device.name, device.site,
                       device.interval_s, device.point_kinds, (parsed,))


def _run(engine: RuleEngine, device: KnownDevice, series: list[dict[str, object]],
         step_ms: int = 1000) -> list[tuple[str, float]]:
    events: list[AlarmEvent] = []
    for i, values in enumerate(series):
        events += engine.evaluate(device, T0 + i * step_ms, values)
    return [(e.state, e.value) for e in events]


@pytest.fixture
def pump(catalogue: DeviceCatalogue) -> KnownDevice:
    device = catalogue.get("ps-01")
    assert device is not None
    return device


def test_threshold_with_hysteresis(pump: KnownDevice) -> None:
    device = _with_rule(pump, {"kind": "threshold", "point": "sump_level", "direction": "above",
                               "raise_at": 4.5, "clear_at": 4.3})
    levels = [4.0, 4.6, 4.9, 4.4, 4.31, 4.7, 4.29, 4.4, 4.0]
    assert _run(_engine(), device, [{"sump_level": v} for v in levels]) == [
        ("raised", 4.6), ("cleared", 4.29)]


def test_default_profile_rule_has_the_chinese_title(pump: KnownDevice) -> None:
    engine = RuleEngine(rules_for=lambda d: d.profile.alarms)
    (event,) = engine.evaluate(pump, T0, {"sump_level": 4.82})
    assert event.title_zh == "1号扬水站集水池水位超高：4.82 m（限值 4.50 m）"
    assert event.severity == "critical" and event.domain == "pump_station"


def test_pending_durations_before_raise_and_clear(pump: KnownDevice) -> None:
    device = _with_rule(pump, {"kind": "threshold", "point": "sump_level", "direction": "above",
                               "raise_at": 4.5, "clear_at": 4.3, "raise_after_s": 3,
                               "clear_after_s": 2})
    # a 2 s spike does not raise; 4 s above does (at the reading 3 s after it started)
    levels = [4.6, 4.6, 4.0, 4.6, 4.6, 4.6, 4.6, 4.0, 4.6, 4.0, 4.0, 4.0]
    assert _run(_engine(), device, [{"sump_level": v} for v in levels]) == [
        ("raised", 4.6), ("cleared", 4.0)]


def test_pending_raise_completes_on_a_tick_without_new_readings(pump: KnownDevice) -> None:
    device = _with_rule(pump, {"kind": "threshold", "point": "sump_level", "direction": "above",
                               "raise_at": 4.5, "clear_at": 4.3, "raise_after_s": 5})
    engine = _engine()
    assert engine.evaluate(device, T0, {"sump_level": 4.8}) == []
    assert engine.tick([device], now_ms=T0 + 4000) == []
    assert [e.state for e in engine.tick([device], now_ms=T0 + 5000)] == ["raised"]


def test_state_flag(catalogue: DeviceCatalogue) -> None:
    pole = catalogue.get("pole-001")
    assert pole is not None
    device = _with_rule(pole, {"kind": "state", "point": "emergency_button"})
    series = [{"emergency_button": v} for v in (False, True, True, False, False)]
    assert _run(_engine(), device, series) == [("raised", 1.0), ("cleared", 0.0)]


def test_rate_of_change_burst(pump: KnownDevice) -> None:
    device = _with_rule(pump, {"kind": "rate_of_change", "point": "outlet_pressure",
                               "direction": "falling", "window_s": 60, "raise_rate": 0.05,
                               "clear_rate": 0.01})
    # steady 0.35 MPa, then falling 0.1 MPa/min for a minute, then steady at the new level
    steady = [0.35] * 60
    falling = [round(0.35 - 0.1 * s / 60, 6) for s in range(1, 61)]
    flat = [falling[-1]] * 90
    result = _run(_engine(), device, [{"outlet_pressure": v} for v in steady + falling + flat])
    assert [state for state, _ in result] == ["raised", "cleared"]
    assert 0.05 < result[0][1] <= 0.1


def test_no_data_raises_when_silent_and_clears_when_back(pump: KnownDevice) -> None:
    device = _with_rule(pump, {"kind": "no_data", "after_intervals": 3})  # interval 5 s
    engine = _engine()
    assert engine.evaluate(device, T0, {"sump_level": 2.0}) == []
    assert engine.tick([device], now_ms=T0 + 14_000) == []
    (raised,) = engine.tick([device], now_ms=T0 + 16_000)
    assert raised.state == "raised" and raised.value > 3
    assert engine.tick([device], now_ms=T0 + 30_000) == []  # still silent: no repeat
    (cleared,) = engine.evaluate(device, T0 + 31_000, {"sump_level": 2.0})
    assert cleared.state == "cleared" and cleared.alarm_id == raised.alarm_id


def test_aggregate_mean_over_window(pump: KnownDevice) -> None:
    device = _with_rule(pump, {"kind": "aggregate", "point": "pump1_current",
                               "function": "mean", "window_s": 10, "direction": "above",
                               "raise_at": 50, "clear_at": 45})
    currents = [40] * 5 + [70] * 4 + [40] * 15  # the mean passes 50 only after a few samples
    result = _run(_engine(), device, [{"pump1_current": v} for v in currents])
    assert [s for s, _ in result] == ["raised", "cleared"]
    assert result[0][1] > 50 and result[1][1] < 45


def test_condition_across_points_dry_running(pump: KnownDevice) -> None:
    device = _with_rule(pump, {"kind": "condition", "all": [
        {"point": "pump1_running", "op": "==", "value": True},
        {"point": "flow", "op": "<", "value": 5.0}]})
    series = [{"pump1_running": True, "flow": 300.0}, {"pump1_running": True, "flow": 1.0},
              {"pump1_running": True, "flow": 0.5}, {"pump1_running": False, "flow": 0.0},
              {"pump1_running": False, "flow": 0.0}]
    assert [s for s, _ in _run(_engine(), device, series)] == ["raised", "cleared"]


def test_night_flow_leak(catalogue: DeviceCatalogue) -> None:
    meter = catalogue.get("ps-01")
    assert meter is not None
    device = _with_rule(meter, {"kind": "night_flow", "point": "total_volume",
                                "window_start": "02:00", "window_end": "04:00",
                                "raise_at": 0.5, "clear_at": 0.2})
    engine = _engine()
    local = timezone(timedelta(hours=8))
    events: list[AlarmEvent] = []

    def night(day: int, flow_m3_per_h: float, start_volume: float) -> float:
        volume = start_volume
        base = datetime(2026, 11, day, 1, 0, tzinfo=local)
        for minutes in range(0, 240, 10):  # 01:00 .. 04:50, every 10 min
            ts = int((base + timedelta(minutes=minutes)).timestamp() * 1000)
            volume = start_volume + flow_m3_per_h * minutes / 60
            events.extend(engine.evaluate(device, ts, {"total_volume": volume}))
        return volume

    volume = night(20, 0.1, 100.0)  # quiet night
    volume = night(21, 1.2, volume)  # a leak
    volume = night(22, 1.2, volume)  # still leaking: no second alarm
    night(23, 0.05, volume)  # repaired
    assert [(e.state, round(e.value, 2)) for e in events] == [("raised", 1.2), ("cleared", 0.05)]


def test_acknowledge_then_clear(pump: KnownDevice) -> None:
    device = _with_rule(pump, {"kind": "threshold", "point": "sump_level", "direction": "above",
                               "raise_at": 4.5, "clear_at": 4.3})
    engine = _engine()
    (raised,) = engine.evaluate(device, T0, {"sump_level": 4.8})
    acked = engine.acknowledge(raised.alarm_id, "值班员张三", ts=T0 + 10)
    assert acked is not None and acked.state == "acknowledged" and acked.acked_by == "值班员张三"
    assert engine.acknowledge("nope", "x") is None
    (cleared,) = engine.evaluate(device, T0 + 20, {"sump_level": 4.0})
    assert cleared.state == "cleared" and cleared.acked_by == "值班员张三"


def test_restart_neither_raises_twice_nor_loses_the_clear(pump: KnownDevice,
                                                          tmp_path: Path) -> None:
    device = _with_rule(pump, {"kind": "threshold", "point": "sump_level", "direction": "above",
                               "raise_at": 4.5, "clear_at": 4.3})
    store = AlarmStore(tmp_path / "alarms.sqlite")
    store.open()
    (raised,) = _engine(store).evaluate(device, T0, {"sump_level": 4.8})
    store.close()

    reopened = AlarmStore(tmp_path / "alarms.sqlite")
    reopened.open()
    engine = _engine(reopened)
    assert engine.restore() == 1
    assert ("ps-01", "r") in engine.active
    assert engine.evaluate(device, T0 + 1000, {"sump_level": 4.9}) == []  # no second raise
    (cleared,) = engine.evaluate(device, T0 + 2000, {"sump_level": 4.0})
    assert cleared.alarm_id == raised.alarm_id and cleared.state == "cleared"
    assert reopened.active() == []


def test_older_readings_are_ignored(pump: KnownDevice) -> None:
    engine = RuleEngine(rules_for=lambda d: d.profile.alarms)
    assert engine.evaluate(pump, 2000, {"sump_level": 4.8})
    assert engine.evaluate(pump, 1500, {"sump_level": 1.0}) == []
    assert ("ps-01", "sump_level_high") in engine.active


