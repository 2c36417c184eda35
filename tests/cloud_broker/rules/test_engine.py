"""Threshold alarms with hysteresis: once per occurrence, in order, with Chinese titles."""

from __future__ import annotations

import itertools

from cloud_broker.registry.devices import DeviceCatalogue
from cloud_broker.rules.engine import ThresholdEngine


def _engine() -> ThresholdEngine:
    counter = itertools.count(1)
    return ThresholdEngine(new_id=lambda: f"a{next(counter)}")


def _levels(engine: ThresholdEngine, catalogue: DeviceCatalogue, levels: list[float],
            start_ts: int = 1000):
    device = catalogue.get("ps-01")
    assert device is not None
    events = []
    for i, level in enumerate(levels):
        events += engine.evaluate(device, start_ts + i, {"sump_level": level})
    return events


def test_raise_once_clear_once_with_hysteresis(catalogue: DeviceCatalogue) -> None:
    # 4.5 raises (above), 4.3 clears (below); values in between change nothing.
    events = _levels(_engine(), catalogue, [4.0, 4.6, 4.9, 4.4, 4.31, 4.7, 4.29, 4.4, 4.0])
    assert [(e.state, e.value) for e in events] == [("raised", 4.6), ("cleared", 4.29)]
    raised, cleared = events
    assert raised.alarm_id == cleared.alarm_id
    assert raised.title_zh == "1号扬水站集水池水位超高：4.60 m（限值 4.50 m）"
    assert raised.severity == "critical" and raised.threshold == 4.5
    assert cleared.raised_ts == raised.ts


def test_reraise_after_clear_is_a_new_occurrence(catalogue: DeviceCatalogue) -> None:
    events = _levels(_engine(), catalogue, [4.6, 4.0, 4.6])
    assert [e.state for e in events] == ["raised", "cleared", "raised"]
    assert events[0].alarm_id != events[2].alarm_id


def test_below_direction_rule(catalogue: DeviceCatalogue) -> None:
    events = _levels(_engine(), catalogue, [1.0, 0.2, 0.4, 0.6])
    assert [(e.rule, e.state) for e in events] == [("sump_level_low", "raised"),
                                                   ("sump_level_low", "cleared")]


def test_older_readings_are_ignored(catalogue: DeviceCatalogue) -> None:
    engine = _engine()
    device = catalogue.get("ps-01")
    assert device is not None
    assert engine.evaluate(device, 2000, {"sump_level": 4.8})
    assert engine.evaluate(device, 1500, {"sump_level": 1.0}) == []  # a late redelivery
    assert ("ps-01", "sump_level_high") in engine.active


def test_bool_point_raises_on_true(catalogue: DeviceCatalogue) -> None:
    engine = _engine()
    pole = catalogue.get("pole-001")
    assert pole is not None
    raised = engine.evaluate(pole, 1, {"emergency_button": True})
    assert [(e.rule, e.state, e.title_zh) for e in raised] == [
        ("emergency_button_pressed", "raised", "东昌路1号灯杆一键报警按钮被按下")]
    assert engine.evaluate(pole, 2, {"emergency_button": True}) == []
    assert [e.state for e in engine.evaluate(pole, 3, {"emergency_button": False})] == ["cleared"]
