"""Simulator config: the sample loads; every kind of mistake is reported with its place."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from device_profiles.schema import ProfileSet
from firmware_sims.config import load_sim_config
from firmware_sims.errors import SimConfigError

SAMPLE = Path(__file__).resolve().parents[2] / "firmware_sims" / "sample.yaml"


def base() -> dict[str, Any]:
    return {
        "control": {"port": 20001},
        "servers": [{"port": 20002, "units": [
            {"unit": 1, "profile": "dc-smartpole-v1"},
            {"unit": 2, "profile": "dc-pumpstation-v1", "initial": {"sump_level": 2.5}}]}],
    }


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "sims.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_sample_config_loads(profiles: ProfileSet) -> None:
    config = load_sim_config(SAMPLE, profiles)
    assert config.control.port == 15099
    assert [s.port for s in config.servers] == [15020, 15021]
    assert config.start_time is not None
    assert config.start_time.utcoffset() == timedelta(hours=8)


def test_defaults(tmp_path: Path) -> None:
    config = load_sim_config(write(tmp_path, base()))
    assert (config.time_scale, config.start_time, config.physics) == (1.0, None, True)
    assert config.control.host == "127.0.0.1" and config.servers[0].host == "127.0.0.1"
    unit = config.servers[0].units[0]
    assert (unit.seed, unit.initial) == (0, {})


def test_naive_start_time_is_district_time(tmp_path: Path) -> None:
    config = load_sim_config(write(tmp_path, {**base(), "start_time": "2024-11-15T17:00:00"}))
    assert config.start_time is not None
    assert config.start_time.utcoffset() == timedelta(hours=8)
    assert config.start_time.hour == 17


def test_initial_values_keep_their_types(tmp_path: Path) -> None:
    document = base()
    document["servers"][0]["units"][0]["initial"] = {"lamp_on": True, "dimming": 80,
                                                     "voltage": 221.3}
    initial = load_sim_config(write(tmp_path, document)).servers[0].units[0].initial
    assert {k: type(v) for k, v in initial.items()} == {"lamp_on": bool, "dimming": int,
                                                         "voltage": float}


def _broken(change: str) -> dict[str, Any]:
    document = base()
    units = document["servers"][0]["units"]
    if change == "unknown profile":
        units[0]["profile"] = "acme-nothing-v9"
    elif change == "duplicate unit":
        units[1]["unit"] = 1
    elif change == "unknown point":
        units[1]["initial"] = {"water_level": 2.0}
    elif change == "value does not fit":
        units[1]["initial"] = {"fault_code": -1}
    elif change == "unit id out of range":
        units[0]["unit"] = 248
    elif change == "extra key":
        document["speed"] = 2
    elif change == "port used twice":
        document["control"]["port"] = 20002
    elif change == "no servers":
        document["servers"] = []
    elif change == "time_scale 0":
        document["time_scale"] = 0
    return document


@pytest.mark.parametrize(("change", "message"), [
    ("unknown profile", "servers[0].units[0] (unit 1): unknown profile 'acme-nothing-v9'"),
    ("duplicate unit", "unit id 1 is used twice on port 20002"),
    ("unknown point", "initial.water_level: profile dc-pumpstation-v1 has no such point"),
    ("value does not fit", "initial.fault_code: -1 does not fit fault_code"),
    ("unit id out of range", "servers.0.units.0.unit: Input should be less than or equal"),
    ("extra key", "speed: Extra inputs are not permitted"),
    ("port used twice", "port 20002 is used more than once"),
    ("no servers", "servers: Tuple should have at least 1 item"),
    ("time_scale 0", "time_scale: Input should be greater than 0"),
])
def test_invalid_config_names_the_problem(tmp_path: Path, change: str, message: str) -> None:
    path = write(tmp_path, _broken(change))
    with pytest.raises(SimConfigError) as caught:
        load_sim_config(path)
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
    assert str(path) in str(caught.value)


def test_unreadable_config(tmp_path: Path) -> None:
    path = tmp_path / "sims.yaml"
    path.write_text("servers: [", encoding="utf-8")
    with pytest.raises(SimConfigError, match="cannot read YAML"):
        load_sim_config(path)
