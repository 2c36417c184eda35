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
    assert [b.name for b in (*config.rtu_buses, *config.cjt188_buses)] == ["rtu-fire",
                                                                         "cjt188-water"]
    assert [u.port for u in config.uitds] == [9527] and config.lorawan[0].port == 1700
    assert "nwk_s_key" not in repr(config.lorawan[0].devices[0])
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
    else:
        _break_field_section(document, change)
    return document


def field_sections() -> dict[str, Any]:
    """One entry of each field-protocol section, valid."""
    return {
        "rtu_buses": [{"name": "rtu-a", "link": "tty/rtu-a", "units": [
            {"unit": 1, "profile": "generic-pt485-hydrant", "initial": {"pressure": 0.35}}]}],
        "cjt188_buses": [{"name": "meters", "link": "tty/meters", "meters": [
            {"address": "78330123456789", "profile": "dc-watermeter-cjt188-v1"}]}],
        "uitds": [{"name": "uitd-a", "port": 20003, "address": "000000000379", "components": [
            {"profile": "dc-smokedetector-v1", "component_address": 131082},
            {"profile": "dc-hydrant-pressure-v1", "component_address": 7,
             "initial": {"pipe_pressure": 0.35}}]}],
        "lorawan": [{"name": "lora-a", "port": 20004, "gateways": ["aa555a0000000001"],
                     "devices": [{"profile": "dc-lorawan-smoke-v1", "dev_addr": "26011BDB",
                                  "nwk_s_key": "2b7e151628aed2a6abf7158809cf4f3c",
                                  "app_s_key": "3c4fcf098815f7aba6d2ae2816157e2b"}]}],
    }


def _break_field_section(document: dict[str, Any], change: str) -> None:
    document.update(field_sections())
    rtu, uitd = document["rtu_buses"][0], document["uitds"][0]
    lora = document["lorawan"][0]
    if change == "rtu profile of another protocol":
        rtu["units"][0]["profile"] = "dc-watermeter-cjt188-v1"
    elif change == "rtu unit twice":
        rtu["units"].append({"unit": 1, "profile": "crowcon-xgardiq"})
    elif change == "name twice":
        uitd["name"] = "rtu-a"
    elif change == "name like a port":
        rtu["name"] = "15020"
    elif change == "link twice":
        document["cjt188_buses"][0]["link"] = "tty/rtu-a"
    elif change == "component twice":
        uitd["components"][1]["component_address"] = 131082
    elif change == "uitd point unknown":
        uitd["components"][0]["initial"] = {"smoke": True}
    elif change == "uitd value does not fit":
        uitd["components"][1]["initial"] = {"pipe_pressure": 9.9}
    elif change == "lorawan key not hex":
        lora["devices"][0]["nwk_s_key"] = "not-a-key-" * 3 + "xx"
    elif change == "lorawan profile of another protocol":
        lora["devices"][0]["profile"] = "dc-smokedetector-v1"
    elif change == "gateway eui":
        lora["gateways"] = ["aa555a00"]
    else:
        raise AssertionError(change)


@pytest.mark.parametrize(("change", "message"), [
    ("unknown profile", "servers[0].units[0] (unit 1): unknown profile 'acme-nothing-v9'"),
    ("duplicate unit", "unit id 1 is used twice on port 20002"),
    ("unknown point", "initial.water_level: profile dc-pumpstation-v1 has no such point"),
    ("value does not fit", "initial.fault_code: -1 does not fit fault_code"),
    ("unit id out of range", "servers.0.units.0.unit: Input should be less than or equal"),
    ("extra key", "speed: Extra inputs are not permitted"),
    ("port used twice", "port 20002 is used more than once"),
    ("no servers", "no simulators: configure servers, rtu_buses"),
    ("time_scale 0", "time_scale: Input should be greater than 0"),
    ("rtu profile of another protocol", "rtu_buses[0].units[0] (unit 1): profile "
     "dc-watermeter-cjt188-v1 speaks cjt188, not modbus_rtu or modbus_tcp"),
    ("rtu unit twice", "unit id 1 is used twice on bus rtu-a"),
    ("name twice", "name rtu-a is used more than once"),
    ("name like a port", "rtu_buses.0.name: String should match pattern"),
    ("link twice", "link tty/rtu-a is used more than once"),
    ("component twice", "uitds[0]: component_address 131082 is used more than once"),
    ("uitd point unknown", "uitds[0].components[0]: initial.smoke: profile "
     "dc-smokedetector-v1 has no such point"),
    ("uitd value does not fit", "uitds[0].components[1]: initial.pipe_pressure: 9.9 does not "
     "fit pipe_pressure (int16"),
    ("lorawan key not hex", "lorawan.0.devices.0.nwk_s_key: String should match pattern"),
    ("lorawan profile of another protocol", "lorawan[0].devices[0]: profile "
     "dc-smokedetector-v1 speaks gbt26875, not lorawan"),
    ("gateway eui", "gateway EUIs must be 16 hex digits: aa555a00"),
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


def test_field_sections_load_with_their_defaults(tmp_path: Path) -> None:
    config = load_sim_config(write(tmp_path, {**base(), **field_sections()}))
    rtu = config.rtu_buses[0]
    assert (rtu.baudrate, rtu.parity, rtu.stopbits, rtu.turnaround_s) == (9600, "N", 2, 0.005)
    uitd = config.uitds[0]
    assert (uitd.host, uitd.interval_s, uitd.retry_s) == ("127.0.0.1", 30.0, 1.0)
    assert (uitd.components[0].system_type, uitd.components[0].component_type) == (1, 0)
    lora = config.lorawan[0]
    assert (lora.keepalive_s, lora.devices[0].interval_s) == (5.0, None)


def test_a_config_of_field_simulators_only_needs_no_servers(tmp_path: Path) -> None:
    config = load_sim_config(write(tmp_path, {"control": {"port": 20001}, **field_sections()}))
    assert config.servers == ()


def test_a_bad_key_is_not_echoed(tmp_path: Path) -> None:
    document = {**base(), **field_sections()}
    secret = "0123456789abcdef0123456789abcdeZ"
    document["lorawan"][0]["devices"][0]["app_s_key"] = secret
    with pytest.raises(SimConfigError) as caught:
        load_sim_config(write(tmp_path, document))
    assert secret not in str(caught.value)
