"""Device models on the step API alone: simulated time only, no sockets, no real time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from device_profiles.schema import ProfileSet
from firmware_sims.device import DeviceModel, Value
from firmware_sims.models import MODELS, build_model
from firmware_sims.pump_station import PumpStation
from firmware_sims.smart_pole import SmartPole

POLE = "dc-smartpole-v1"
PUMP = "dc-pumpstation-v1"
STEP_S = 10.0


def run(model: DeviceModel, start: datetime, seconds: float,
        step_s: float = STEP_S) -> Iterator[tuple[datetime, dict[str, Value]]]:
    """Step `model` from `start` for `seconds`, yielding (time, values) after each step."""
    t = start
    for _ in range(round(seconds / step_s)):
        t += timedelta(seconds=step_s)
        model.step(step_s, t)
        yield t, model.values()


def first(model: DeviceModel, start: datetime, within_s: float,
          predicate: Callable[[dict[str, Value]], bool], step_s: float = STEP_S,
          ) -> tuple[datetime, dict[str, Value], list[dict[str, Value]]]:
    """The first step whose values satisfy predicate, and every step before it."""
    before: list[dict[str, Value]] = []
    for t, values in run(model, start, within_s, step_s):
        if predicate(values):
            return t, values, before
        before.append(values)
    pytest.fail(f"not reached within {within_s} simulated seconds")


def at(hour: int, minute: int, day: datetime) -> datetime:
    return day.replace(hour=hour, minute=minute)


@pytest.fixture
def pump(profiles: ProfileSet, november_midnight: datetime) -> PumpStation:
    model = build_model(profiles.get(PUMP), november_midnight, seed=3)
    assert isinstance(model, PumpStation)
    return model


@pytest.fixture
def pole(profiles: ProfileSet, november_midnight: datetime) -> SmartPole:
    model = build_model(profiles.get(POLE), november_midnight, seed=5)
    assert isinstance(model, SmartPole)
    return model


def test_registry_maps_each_simulated_domain_to_its_model() -> None:
    assert {cls.domain: cls for cls in MODELS.values()} == dict(MODELS)


def test_inflow_starts_pump1_at_3_0_m_and_it_stops_at_1_2_m(
        pump: PumpStation, november_midnight: datetime) -> None:
    # One-second steps: the level a step reports is the one the PLC decided on.
    pump.set_state("sump_level", 2.9)
    started_at, on, rising = first(pump, november_midnight, 6 * 3600,
                                   lambda v: bool(v["pump1_running"]), step_s=1.0)
    assert 3.0 <= on["sump_level"] < 3.01
    assert all(not v["pump1_running"] and v["sump_level"] < 3.0 for v in rising)
    assert len(rising) > 60, "the inflow, not the set level, must have filled the sump"
    _, off, draining = first(pump, started_at, 6 * 3600, lambda v: not v["pump1_running"],
                             step_s=1.0)
    assert 1.19 < off["sump_level"] <= 1.2
    assert all(v["sump_level"] > 1.2 for v in draining)
    assert draining[-1]["sump_level"] < on["sump_level"]


def test_level_set_above_4_5_m_runs_both_pumps_and_is_pumped_down(
        pump: PumpStation, november_midnight: datetime) -> None:
    pump.set_state("sump_level", 4.9)
    _, values, _ = first(pump, november_midnight, 60, lambda v: v["pump2_running"])
    assert values["pump1_running"] and values["sump_level"] > 4.5
    _, off, draining = first(pump, november_midnight, 4 * 3600,
                             lambda v: not v["pump1_running"] and not v["pump2_running"])
    assert off["sump_level"] <= 1.2
    full_speed = [v for v in draining if v["pump2_frequency"] >= 49.9]
    assert full_speed, "pump2 never reached full speed"
    for v in full_speed:
        assert 40.0 <= v["pump1_current"] <= 48.0 and 40.0 <= v["pump2_current"] <= 48.0
        assert 0.30 <= v["outlet_pressure"] <= 0.38
        assert 680 <= v["flow"] <= 720
    assert max(v["sump_level"] for v in draining) <= 5.5


def test_force_holds_the_reported_level_while_physics_carries_on(
        pump: PumpStation, november_midnight: datetime) -> None:
    pump.set_state("sump_level", 2.0)
    pump.force("sump_level", 4.9)
    reported = [v["sump_level"] for _, v in run(pump, november_midnight, 600)]
    assert set(reported) == {4.9}
    assert pump.forced == {"sump_level": 4.9}
    pump.release("sump_level")
    level = pump.values()["sump_level"]
    assert 1.5 < level < 3.0
    pump.force("fault_code", 3)
    pump.force("pump2_fault", True)
    pump.release_all()
    assert pump.forced == {}


@pytest.mark.parametrize(("point", "value"), [
    ("sump_level", "high"), ("fault_code", -1), ("fault_code", 70000),
    ("pump1_fault", 2), ("flow", float("nan")),
])
def test_force_rejects_a_value_the_registers_cannot_hold(pump: PumpStation, point: str,
                                                         value: object) -> None:
    with pytest.raises(ValueError, match=point):
        pump.force(point, value)


def test_unknown_point_or_state_is_a_key_error(pump: PumpStation) -> None:
    with pytest.raises(KeyError, match="no point 'nope'"):
        pump.force("nope", 1)
    with pytest.raises(KeyError, match="no state 'flow'"):
        pump.set_state("flow", 1)
    with pytest.raises(ValueError, match=r"within 0\.\.5\.5"):
        pump.set_state("sump_level", 7.0)


def test_stopped_pumps_read_zero_and_static_pressure(pump: PumpStation,
                                                     november_midnight: datetime) -> None:
    pump.set_state("sump_level", 1.5)
    _, v = next(run(pump, november_midnight, STEP_S))
    assert not v["pump1_running"] and not v["pump2_running"]
    assert v["pump1_current"] == v["pump2_current"] == v["flow"] == 0
    assert 0.04 <= v["outlet_pressure"] <= 0.06


def test_total_volume_accumulates_the_pumped_flow(pump: PumpStation,
                                                  november_midnight: datetime) -> None:
    pump.set_state("sump_level", 3.5)
    before = pump.values()["total_volume"]
    flows = [v["flow"] for _, v in run(pump, november_midnight, 1200)]
    pumped = pump.values()["total_volume"] - before
    assert pumped == pytest.approx(sum(flows) * STEP_S / 3600, rel=0.02)


def test_a_faulted_pump_stops_and_the_other_takes_over(pump: PumpStation,
                                                       november_midnight: datetime) -> None:
    pump.set_state("pump1_fault", True)
    pump.set_state("sump_level", 4.0)
    _, v = next(run(pump, november_midnight, STEP_S))
    assert v["pump1_fault"] and not v["pump1_running"] and v["pump1_current"] == 0
    assert v["pump2_running"]


@pytest.mark.parametrize(("hour", "minute", "lamp_on", "dimming", "power"), [
    (22, 0, True, 100, (145, 155)),
    (2, 30, True, 50, (70, 80)),
    (12, 0, False, 0, (1.5, 2.5)),
    (17, 0, False, 0, (1.5, 2.5)),
    (18, 0, True, 100, (145, 155)),
    (7, 30, False, 0, (1.5, 2.5)),
], ids=["22:00", "02:30", "noon", "17:00", "18:00", "07:30"])
def test_lamp_follows_dusk_to_dawn_with_night_dimming(
        pole: SmartPole, november_midnight: datetime, hour: int, minute: int, lamp_on: bool,
        dimming: int, power: tuple[float, float]) -> None:
    *_, (_, v) = run(pole, at(hour, minute, november_midnight) - timedelta(minutes=5), 300)
    assert (v["lamp_on"], v["dimming"]) == (lamp_on, dimming)
    assert power[0] <= v["active_power"] <= power[1]
    assert v["current"] == pytest.approx(v["active_power"] / v["voltage"], abs=0.002)


def test_a_client_write_to_lamp_on_and_dimming_sticks(pole: SmartPole,
                                                      november_midnight: datetime) -> None:
    evening = at(22, 0, november_midnight)
    pole.write("lamp_on", False)
    *_, (_, v) = run(pole, evening, 600)
    assert not v["lamp_on"] and v["active_power"] < 3
    pole.write("lamp_on", True)
    pole.write("dimming", 30)
    *_, (_, v) = run(pole, evening, 600)
    assert v["lamp_on"] and v["dimming"] == 30 and 40 <= v["active_power"] <= 50
    with pytest.raises(ValueError, match="read-only"):
        pole.write("voltage", 230)


PLAUSIBLE: dict[str, dict[str, tuple[float, float]]] = {
    PUMP: {"pump1_current": (0, 48), "pump2_current": (0, 48), "pump1_frequency": (0, 50),
           "pump2_frequency": (0, 50), "sump_level": (0.5, 5.5),
           "outlet_pressure": (0.04, 0.38), "flow": (0, 720), "total_volume": (0, 20_000),
           "fault_code": (0, 0)},
    POLE: {"dimming": (0, 100), "voltage": (213, 227), "current": (0, 0.72),
           "active_power": (1.5, 155), "energy": (0, 2.0), "pm25": (10, 140),
           "pm10": (15, 250), "temperature": (1, 17), "humidity": (15, 99),
           "noise": (44, 70), "tilt": (0.15, 0.55)},
}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("profile_id", [PUMP, POLE])
def test_values_stay_plausible_over_a_simulated_day(
        profiles: ProfileSet, november_midnight: datetime, profile_id: str,
        seed: int) -> None:
    model = build_model(profiles.get(profile_id), november_midnight, seed=seed)
    seen: dict[str, set[Value]] = {}
    previous_total = 0.0
    for _, values in run(model, november_midnight, 86400, step_s=30):
        assert set(values) == {p.name for p in profiles.get(profile_id).points}
        for name, (low, high) in PLAUSIBLE[profile_id].items():
            assert low <= values[name] <= high, (name, values[name])
        for name, value in values.items():
            seen.setdefault(name, set()).add(value)
        total = float(values["total_volume" if profile_id == PUMP else "energy"])
        assert total >= previous_total
        previous_total = total
    assert seen.get("pump1_fault", {False}) == {False}
    assert seen.get("emergency_button", {False}) == {False}
    assert len(seen["pump1_running" if profile_id == PUMP else "lamp_on"]) == 2


def test_pole_daily_patterns(pole: SmartPole, november_midnight: datetime) -> None:
    day = {t.hour: v for t, v in run(pole, november_midnight, 86400, step_s=60)
           if t.minute == 0}
    assert day[14]["temperature"] > day[6]["temperature"] + 6
    assert day[14]["humidity"] < day[6]["humidity"]
    assert day[19]["pm25"] > day[3]["pm25"] and day[8]["pm25"] > day[3]["pm25"]
    assert day[14]["noise"] > day[3]["noise"] + 8
    for v in day.values():
        assert 1.45 <= v["pm10"] / v["pm25"] <= 1.85


def test_physics_off_freezes_initial_values(profiles: ProfileSet,
                                            november_midnight: datetime) -> None:
    initial: dict[str, Value] = {"sump_level": 4.2, "flow": 351.5, "pump1_running": True}
    model = build_model(profiles.get(PUMP), november_midnight, initial=initial, physics=False)
    before = model.values()
    assert {k: before[k] for k in initial} == initial
    *_, (_, after) = run(model, november_midnight, 3600)
    assert after == before


def test_same_seed_same_values(profiles: ProfileSet, november_midnight: datetime) -> None:
    def day(seed: int) -> list[dict[str, Value]]:
        model = build_model(profiles.get(PUMP), november_midnight, seed=seed)
        return [v for _, v in run(model, november_midnight, 3600)]
    assert day(9) == day(9)
    assert day(9) != day(10)
