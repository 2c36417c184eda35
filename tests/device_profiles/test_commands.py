"""Commands and interlocks in profiles: the shipped ones validate, every cross-reference mistake
is reported at its field, parameters are checked, and writes scale like reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dciot.cli.main import app
from device_profiles.commands import (
    Cjt188Valve,
    Command,
    ParameterError,
    validate_parameters,
)
from device_profiles.schema import (
    PROFILES_ROOT,
    ProfileError,
    load_profile,
    load_profiles,
)
from edge_agent.protocols.modbus.codec import decode_point, encode_point
from edge_agent.scaling import to_engineering, to_raw

FILES = {
    "dc-pumpstation-v1": "pump_station",
    "dc-smartpole-v1": "streetlight",
    "dc-watermeter-cjt188-v1": "water_meter",
    "dc-lorawan-watermeter-v1": "water_meter",
    "dc-smokedetector-v1": "fire",
}


def _data(profile_id: str) -> dict[str, Any]:
    path = PROFILES_ROOT / FILES[profile_id] / f"{profile_id}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _problems(tmp_path: Path, profile_id: str, mutate: Callable[[dict[str, Any]], Any]
              ) -> list[str]:
    data = _data(profile_id)
    mutate(data)
    path = tmp_path / f"{profile_id}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return info.value.problems


def _cmd(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in data["commands"] if c["name"] == name)


def _lock(data: dict[str, Any], lock_id: str) -> dict[str, Any]:
    return next(i for i in data["interlocks"] if i["id"] == lock_id)


def _point(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in data["points"] if p["name"] == name)


# -- the shipped profiles --------------------------------------------------------------------


def test_shipped_profiles_declare_their_commands() -> None:
    profiles = load_profiles()
    names = {pid: {c.name for c in profiles.get(pid).commands} for pid in FILES}
    assert names == {
        "dc-pumpstation-v1": {"pump1_start", "pump1_stop", "pump2_start", "pump2_stop",
                              "fault_reset"},
        "dc-smartpole-v1": {"lamp_on", "lamp_off", "set_dimming"},
        "dc-watermeter-cjt188-v1": {"valve_open", "valve_close"},
        "dc-lorawan-watermeter-v1": {"valve_open", "valve_close"},
        "dc-smokedetector-v1": set(),
    }


def test_pump_starts_are_interlocked_and_stops_are_not() -> None:
    pump = load_profiles().get("dc-pumpstation-v1")
    for k in (1, 2):
        start = pump.command(f"pump{k}_start")
        assert set(start.interlocks) == {"sump_not_dry", f"pump{k}_min_off_time",
                                         f"pump{k}_max_starts", "pumps_stagger"}
        assert start.confirm and start.readback is not None
        assert start.readback.point == f"pump{k}_running" and start.readback.expect is True
        assert pump.command(f"pump{k}_stop").interlocks == ()
    stagger = pump.interlock("pumps_stagger")
    assert stagger.watched_points() == ["pump1_running", "pump2_running"]


def test_dry_run_interlock_uses_the_low_level_alarm_threshold() -> None:
    pump = load_profiles().get("dc-pumpstation-v1")
    low = next(a for a in pump.alarms if a.id == "sump_level_low")
    lock = pump.interlock("sump_not_dry")
    assert (lock.point, lock.op, lock.value) == ("sump_level", ">=", low.raise_at)


def test_interlock_message_names_the_value_that_tripped_it() -> None:
    lock = load_profiles().get("dc-pumpstation-v1").interlock("sump_not_dry")
    text = lock.message_zh.format(device="1号泵站", value=0.12, limit=0.3, unit="m",
                                  label="集水池水位")
    assert "0.12 m" in text and "0.30 m" in text and "1号泵站" in text


def test_pump_commands_write_coils_the_profile_marks_writable() -> None:
    pump = load_profiles().get("dc-pumpstation-v1")
    for name in ("pump1_start", "pump2_stop", "fault_reset"):
        target = pump.write_target(pump.command(name))
        assert (str(target.register_type), str(target.access)) == ("coil", "read_write")


def test_smart_pole_commands_write_the_registers_the_simulator_accepts() -> None:
    pole = load_profiles().get("dc-smartpole-v1")
    assert pole.write_target(pole.command("lamp_off")).name == "lamp_on"
    dimming = pole.command("set_dimming")
    assert pole.write_target(dimming).name == "dimming"
    assert dimming.mapping.function_code == 6
    assert dimming.resolve(dimming.readback.expect, {"level": 40}) == 40


def test_cjt188_valve_command_uses_item_a017() -> None:
    meter = load_profiles().get("dc-watermeter-cjt188-v1")
    close = meter.command("valve_close").mapping
    assert isinstance(close, Cjt188Valve)
    assert (close.CONTROL_CODE, close.DATA_ID, close.action_byte) == (0x04, 0xA017, 0x99)
    assert meter.command("valve_open").mapping.action_byte == 0x55


def test_lorawan_valve_downlink_layout() -> None:
    meter = load_profiles().get("dc-lorawan-watermeter-v1")
    mapping = meter.command("valve_close").mapping
    assert mapping.kind == "lorawan_downlink"
    assert (mapping.fport, mapping.length) == (10, 2)
    assert [f.value for f in mapping.payload] == [1, 0]
    assert meter.command("valve_open").readback.point == "valve_state"


# -- every cross-reference mistake is named with its field path ------------------------------

PUMP, POLE, LORA, CJT = ("dc-pumpstation-v1", "dc-smartpole-v1", "dc-lorawan-watermeter-v1",
                         "dc-watermeter-cjt188-v1")

MISTAKES = [
    pytest.param(PUMP, lambda d: _cmd(d, "pump1_start")["mapping"].update(point="nope"),
                 "commands[0] (pump1_start).mapping.point", "unknown point 'nope'",
                 id="write-unknown-point"),
    pytest.param(PUMP, lambda d: _cmd(d, "pump1_start")["mapping"].update(point="pump1_fault",
                                                                         function_code=6),
                 "commands[0] (pump1_start).mapping.point", "read-only", id="write-read-only"),
    pytest.param(PUMP, lambda d: _point(d, "pump1_fault").update(access="read_write")
                 or _cmd(d, "pump1_start")["mapping"].update(point="pump1_fault",
                                                             function_code=6),
                 "commands[0] (pump1_start).mapping.point", "overwrite the other bits",
                 id="write-one-bit-of-a-register"),
    pytest.param(PUMP, lambda d: _cmd(d, "pump1_start")["mapping"].update(function_code=6),
                 "commands[0] (pump1_start).mapping.function_code",
                 "function code 6 writes holding registers", id="fc-vs-table"),
    pytest.param(PUMP, lambda d: _cmd(d, "fault_reset")["mapping"].update(
        point=None, function_code=6, value=1.5,
        raw_register={"register_type": "holding", "address": 20, "type": "float32"}),
                 "commands[4] (fault_reset).mapping.function_code", "use 16", id="fc-vs-width"),
    pytest.param(PUMP, lambda d: _cmd(d, "fault_reset")["mapping"].update(
        point=None, raw_register={"register_type": "coil", "address": 1, "type": "bool"}),
                 "commands[4] (fault_reset).mapping.raw_register",
                 "overlaps 'pump2_run_command'", id="raw-register-overlaps-point"),
    pytest.param(PUMP, lambda d: _cmd(d, "fault_reset")["mapping"].update(
        point=None, raw_register={"register_type": "coil", "address": 9, "type": "uint16"}),
                 "commands[4] (fault_reset).mapping.raw_register", "cannot live in a coil",
                 id="raw-register-bad-type"),
    pytest.param(PUMP, lambda d: _cmd(d, "pump1_stop").update(
        mapping={"kind": "cjt188_valve", "action": "close"}),
                 "commands[1] (pump1_stop).mapping.kind",
                 "protocol modbus_tcp executes modbus_write", id="mapping-vs-protocol"),
    pytest.param(CJT, lambda d: _cmd(d, "valve_open").update(mapping={
        "kind": "modbus_write", "function_code": 5, "point": "valve_open", "value": True}),
                 "commands[0] (valve_open).mapping.kind", "executes cjt188_valve",
                 id="modbus-on-cjt188"),
    pytest.param("dc-smokedetector-v1", lambda d: d.update(commands=[{
        "name": "silence", "label_zh": "消音",
        "mapping": {"kind": "cjt188_valve", "action": "close"}}]),
                 "commands[0] (silence).mapping.kind", "takes no commands",
                 id="gbt26875-takes-no-commands"),
    pytest.param(PUMP, lambda d: _cmd(d, "pump2_start")["interlocks"].append("ghost"),
                 "commands[2] (pump2_start).interlocks", "unknown interlock 'ghost'",
                 id="unknown-interlock"),
    pytest.param(PUMP, lambda d: _lock(d, "pump1_min_off_time").update(point="sump_level"),
                 "interlocks[1] (pump1_min_off_time).point", "needs a bool point",
                 id="min-off-time-on-numeric-point"),
    pytest.param(PUMP, lambda d: _lock(d, "pump2_max_starts").update(point="flow"),
                 "interlocks[4] (pump2_max_starts).point", "needs a bool point",
                 id="max-starts-on-numeric-point"),
    pytest.param(PUMP, lambda d: _lock(d, "pumps_stagger").update(
        points=["pump1_running", "pump3_running"]),
                 "interlocks[5] (pumps_stagger).points", "unknown point 'pump3_running'",
                 id="stagger-unknown-point"),
    pytest.param(PUMP, lambda d: _lock(d, "sump_not_dry").update(point="sump_levl"),
                 "interlocks[0] (sump_not_dry).point", "unknown point 'sump_levl'",
                 id="reading-unknown-point"),
    pytest.param(PUMP, lambda d: _lock(d, "sump_not_dry").update(value=True),
                 "interlocks[0] (sump_not_dry).value", "compare it with a number",
                 id="reading-bool-vs-number"),
    pytest.param(PUMP, lambda d: _lock(d, "sump_not_dry").update(max_age_s=2),
                 "interlocks[0] (sump_not_dry).max_age_s", "shorter than the poll interval",
                 id="max-age-below-poll-interval"),
    pytest.param(PUMP, lambda d: _cmd(d, "pump1_start").update(interlocks=[
        "sump_not_dry", "pump1_max_starts", "pumps_stagger"]),
                 "interlocks[1] (pump1_min_off_time).id", "used by no command",
                 id="unused-interlock"),
    pytest.param(PUMP, lambda d: _lock(d, "pumps_stagger").update(message_zh="{nope}"),
                 "interlocks[5] (pumps_stagger)", "message_zh template", id="bad-template"),
    pytest.param(PUMP, lambda d: _cmd(d, "pump1_stop")["readback"].update(point="nope"),
                 "commands[1] (pump1_stop).readback.point", "unknown point 'nope'",
                 id="readback-unknown-point"),
    pytest.param(PUMP, lambda d: _cmd(d, "pump1_stop")["readback"].update(expect=1.5),
                 "commands[1] (pump1_stop).readback.expect", "cannot go into a bool",
                 id="readback-number-for-bool"),
    pytest.param(PUMP, lambda d: _cmd(d, "pump1_stop")["readback"].update(tolerance=1),
                 "commands[1] (pump1_stop).readback.tolerance", "takes no tolerance",
                 id="readback-tolerance-on-bool"),
    pytest.param(POLE, lambda d: _cmd(d, "lamp_on")["mapping"].update(value=3),
                 "commands[0] (lamp_on).mapping.value", "cannot go into a bool",
                 id="number-into-coil"),
    pytest.param(POLE, lambda d: _cmd(d, "set_dimming")["parameters"][0].update(max=70000),
                 "commands[2] (set_dimming).mapping.value", "does not fit uint16",
                 id="parameter-range-beyond-register"),
    pytest.param(POLE, lambda d: _cmd(d, "set_dimming")["parameters"][0].update(
        type="bool", min=None, max=None),
                 "commands[2] (set_dimming).mapping.value", "cannot feed a uint16",
                 id="bool-parameter-into-number"),
    pytest.param(POLE, lambda d: _cmd(d, "set_dimming")["mapping"].update(
        value={"parameter": "lvl"}),
                 "commands[2] (set_dimming)", "unknown parameter(s) lvl",
                 id="unknown-parameter"),
    pytest.param(POLE, lambda d: _cmd(d, "set_dimming")["parameters"].append(
        {"name": "ramp_s", "label_zh": "渐变时间", "type": "int", "min": 0, "max": 60}),
                 "commands[2] (set_dimming)", "ramp_s are not used", id="unused-parameter"),
    pytest.param(POLE, lambda d: _cmd(d, "set_dimming")["parameters"][0].update(min=100,
                                                                               max=0),
                 "commands[2] (set_dimming).parameters[0] (level)", "min must be <= max",
                 id="parameter-min-above-max"),
    pytest.param(POLE, lambda d: _cmd(d, "set_dimming")["parameters"][0].pop("max"),
                 "commands[2] (set_dimming).parameters[0] (level)", "needs min and max",
                 id="parameter-without-range"),
    pytest.param(POLE, lambda d: _cmd(d, "set_dimming")["parameters"][0].update(unit="furlong"),
                 "commands[2] (set_dimming).parameters[0] (level).unit", "unit 'furlong'",
                 id="parameter-unknown-unit"),
    pytest.param(POLE, lambda d: _cmd(d, "set_dimming")["parameters"][0].update(default=150),
                 "commands[2] (set_dimming).parameters[0] (level)", "default:",
                 id="default-out-of-range"),
    pytest.param(POLE, lambda d: d["commands"].append(dict(_cmd(d, "lamp_on"))),
                 "(top level)", "duplicate command names: lamp_on", id="duplicate-command"),
    pytest.param(POLE, lambda d: _cmd(d, "lamp_on")["mapping"].update(function_code=7),
                 "commands[0] (lamp_on).mapping.modbus_write.function_code", "Input should be",
                 id="unknown-function-code"),
    pytest.param(LORA, lambda d: _cmd(d, "valve_open")["mapping"]["payload"][1].update(
        value=300), "commands[0] (valve_open).mapping.payload[1].value", "does not fit uint8",
                 id="payload-value-too-big"),
    pytest.param(LORA, lambda d: _cmd(d, "valve_open")["mapping"]["payload"][1].update(
        byte_offset=0), "commands[0] (valve_open).mapping", "overlaps payload[0]",
                 id="payload-overlap"),
    pytest.param(LORA, lambda d: _cmd(d, "valve_open")["mapping"].update(fport=224),
                 "commands[0] (valve_open).mapping.lorawan_downlink.fport", "less than or equal",
                 id="fport-out-of-range"),
    pytest.param(LORA, lambda d: _cmd(d, "valve_open")["mapping"]["payload"].append(
        {"byte_offset": 49, "type": "uint32", "value": 0}),
                 "commands[0] (valve_open).mapping", "53 bytes; at most 51",
                 id="payload-too-long"),
]


@pytest.mark.parametrize(("profile_id", "mutate", "where", "what"), MISTAKES)
def test_command_mistakes_are_reported_at_their_field(tmp_path: Path, profile_id: str,
                                                      mutate: Callable[[dict[str, Any]], Any],
                                                      where: str, what: str) -> None:
    problems = _problems(tmp_path, profile_id, mutate)
    assert any(p.startswith(where) and what in p for p in problems), problems


def test_every_bad_command_is_reported_not_just_the_first(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        _cmd(d, "pump1_start")["mapping"]["point"] = "nope"
        _cmd(d, "pump2_stop")["readback"]["point"] = "gone"

    problems = _problems(tmp_path, PUMP, mutate)
    assert problems == ["commands[0] (pump1_start).mapping.point: unknown point 'nope'",
                        "commands[3] (pump2_stop).readback.point: unknown point 'gone'"]


def test_cli_check_names_the_bad_command_and_its_file(tmp_path: Path) -> None:
    data = _data(POLE)
    _cmd(data, "set_dimming")["mapping"]["point"] = "voltage"
    (tmp_path / f"{POLE}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                           encoding="utf-8")
    result = CliRunner().invoke(app, ["profiles", "check", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 1
    assert f"{POLE}.yaml" in result.output
    assert "commands[2] (set_dimming).mapping.point: point 'voltage' is read-only" in (
        result.output)


# -- parameter validation --------------------------------------------------------------------


def _command(parameters: list[dict[str, Any]]) -> Command:
    fields = [{"byte_offset": i * 4, "type": "float32", "value": {"parameter": p["name"]}}
              for i, p in enumerate(parameters)]
    return Command.model_validate({
        "name": "tune", "label_zh": "调节", "parameters": parameters,
        "mapping": {"kind": "lorawan_downlink", "fport": 5, "payload": fields}})


DIMMING = load_profiles().get(POLE).command("set_dimming")
MODE = _command([
    {"name": "mode", "label_zh": "运行模式", "type": "enum", "default": "auto",
     "choices": [{"value": "auto", "label_zh": "自动", "code": 0},
                 {"value": "manual", "label_zh": "手动", "code": 1}]},
    {"name": "setpoint", "label_zh": "设定压力", "type": "float", "unit": "MPa", "min": 0,
     "max": 0.6},
    {"name": "night", "label_zh": "夜间模式", "type": "bool", "default": False},
])


@pytest.mark.parametrize(("command", "params", "expected"), [
    (DIMMING, {"level": 0}, {"level": 0}),
    (DIMMING, {"level": 100}, {"level": 100}),
    (DIMMING, {"level": 50.0}, {"level": 50}),
    (MODE, {"setpoint": 0.35}, {"mode": "auto", "setpoint": 0.35, "night": False}),
    (MODE, {"mode": "manual", "setpoint": 0, "night": True},
     {"mode": "manual", "setpoint": 0.0, "night": True}),
])
def test_valid_parameters_are_accepted_with_defaults(command: Command, params: dict[str, Any],
                                                     expected: dict[str, Any]) -> None:
    result = validate_parameters(command, params)
    assert result == expected
    assert not isinstance(result, ParameterError)
    assert [type(v) for v in result.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize(("command", "params", "zh", "en"), [
    (DIMMING, {"level": 101}, "调光比例 101% 超出允许范围 0–100%", "level 101 is outside 0..100 %"),
    (DIMMING, {"level": -1}, "超出允许范围", "outside"),
    (DIMMING, {"level": 50.5}, "调光比例应为整数", "takes an integer"),
    (DIMMING, {"level": "50"}, "应为整数", "not '50'"),
    (DIMMING, {"level": True}, "应为整数", "not True"),
    (DIMMING, {"level": float("nan")}, "应为整数", "takes an integer"),
    (DIMMING, {}, "缺少参数 调光比例（level）", "missing parameter 'level'"),
    (DIMMING, {"level": 50, "lvel": 3}, "未知参数 lvel（本命令的参数：level）",
     "unknown parameter 'lvel'"),
    (MODE, {"setpoint": 0.35, "mode": "turbo"}, "运行模式应为以下之一：auto、manual",
     "must be one of auto, manual"),
    (MODE, {"setpoint": 0.7}, "设定压力 0.7MPa 超出允许范围 0–0.6MPa", "outside 0..0.6 MPa"),
    (MODE, {"setpoint": 0.3, "night": 1}, "夜间模式应为 true 或 false", "takes true or false"),
])
def test_bad_parameters_are_refused_in_chinese_and_english(command: Command,
                                                           params: dict[str, Any], zh: str,
                                                           en: str) -> None:
    result = validate_parameters(command, params)
    assert isinstance(result, ParameterError)
    assert zh in result.message_zh
    assert en in result.message_en


def test_every_bad_parameter_is_listed() -> None:
    result = validate_parameters(MODE, {"setpoint": 9, "night": "yes", "speed": 3})
    assert isinstance(result, ParameterError)
    assert {p.parameter for p in result.problems} == {"setpoint", "night", "speed"}


def test_enum_parameter_puts_its_code_on_the_wire() -> None:
    params = validate_parameters(MODE, {"mode": "manual", "setpoint": 0.2})
    assert not isinstance(params, ParameterError)
    mapping = MODE.mapping
    assert [MODE.resolve(f.value, params) for f in mapping.payload] == [1, 0.2, False]


# -- writes scale like reads -----------------------------------------------------------------


def _with_command(command: dict[str, Any], tmp_path: Path) -> Any:
    data = _data(PUMP)
    data["commands"].append(command)
    path = tmp_path / f"{PUMP}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    profile = load_profile(path)
    return profile, profile.command(command["name"])


@pytest.mark.parametrize(("register", "values"), [
    ({"register_type": "holding", "address": 30, "type": "int16", "scale": 0.1, "offset": -40},
     [-40.0, -12.3, 0.0, 25.5, 60.0]),
    ({"register_type": "holding", "address": 30, "type": "uint16", "scale": 0.01},
     [0.0, 0.35, 1.0, 6.0]),
    ({"register_type": "holding", "address": 30, "type": "uint32", "scale": 0.1,
      "word_order": "little"}, [0.0, 1234.5, 99999.9]),
    ({"register_type": "holding", "address": 30, "type": "float32", "byte_order": "little"},
     [0.0, 0.25, 42.5]),
])
def test_a_written_value_reads_back_through_the_point_scaling(
        tmp_path: Path, register: dict[str, Any], values: list[float]) -> None:
    low, high = min(values), max(values)
    profile, command = _with_command({
        "name": "set_target", "label_zh": "设定目标值",
        "parameters": [{"name": "target", "label_zh": "目标值", "type": "float", "min": low,
                        "max": high}],
        "mapping": {"kind": "modbus_write", "function_code": 16, "raw_register": register,
                    "value": {"parameter": "target"}}}, tmp_path)
    target = profile.write_target(command)
    for value in values:
        params = validate_parameters(command, {"target": value})
        assert not isinstance(params, ParameterError)
        engineering = command.resolve(command.mapping.value, params)
        raw = to_raw(target, engineering)
        if target.type != "float32":
            assert raw == round((value - target.offset) / target.scale)
        words = encode_point(target, raw)
        assert len(words) == target.words
        assert to_engineering(target, decode_point(target, target.address, words)) == (
            pytest.approx(value, abs=1e-9))


def test_a_write_outside_the_register_range_is_rejected_at_load(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        _with_command({
            "name": "set_target", "label_zh": "设定目标值",
            "mapping": {"kind": "modbus_write", "function_code": 6, "value": -50,
                        "raw_register": {"register_type": "holding", "address": 30,
                                         "type": "int16", "scale": 0.001}}}, tmp_path)
    assert any("commands[5] (set_target).mapping.value: -50 does not fit int16" in p
               for p in info.value.problems), info.value.problems
