"""Commands and interlocks a profile declares: the declarative half of downlink control.

A command names its parameters (typed, with units and ranges), how it maps onto the device's
protocol (`mapping`, by `kind`), which point to read back to confirm the effect, which of the
profile's interlocks must pass right before execution, and whether an operator must confirm it.
The edge validates parameters (`validate_parameters`), checks the interlocks against fresh
readings, executes the mapping and reads back; this module holds no I/O.

Values written come from a parameter (`{parameter: name}`) or a constant. Writes scale like the
points read: raw = (engineering - offset) / scale. Cross-references to the profile's points and
interlocks are checked by `Profile` (schema.py), which knows the points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from device_profiles.rules import NAME_PATTERN

Constant = bool | int | float
ParamValue = bool | int | float | str

# Raw value range of each data type (what the register or payload bytes can carry).
RAW_RANGES: dict[str, tuple[float, float]] = {
    "int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535),
    "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
    "float32": (-3.4028234663852886e38, 3.4028234663852886e38)}
PAYLOAD_TYPES = Literal["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "float32"]
REGISTER_TYPES = Literal["bool", "int16", "uint16", "int32", "uint32", "float32"]
PAYLOAD_SIZES = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4,
                 "uint32": 4, "float32": 4}

MAX_DOWNLINK_BYTES = 51
"""The smallest FRMPayload a LoRaWAN downlink can carry at the slowest data rate (DR0 of EU868
and CN470 allows 51 bytes); a longer payload would not go out in every receive window."""

# Function code -> (register table it writes, words it writes or None for "any number").
FUNCTION_CODES: dict[int, tuple[str, int | None]] = {
    5: ("coil", 1), 15: ("coil", None), 6: ("holding", 1), 16: ("holding", None)}

INTERLOCK_TEMPLATE_FIELDS = {"device": "d", "value": 1.0, "limit": 1.0, "unit": "", "label": ""}
STALE_READING_ZH = ("{device}联锁“{interlock}”：{label}读数缺失或已超过 {max_age_s:.0f} 秒未更新，"
                    "拒绝执行")
"""Refusal text when the reading an interlock needs is missing or older than its max_age_s."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParamRef(_Frozen):
    """Take the value of one of the command's parameters (an enum gives its choice's `code`)."""

    parameter: str = Field(pattern=NAME_PATTERN, description="the parameter's name")


Operand = bool | int | float | ParamRef


class Choice(_Frozen):
    """One value of an enum parameter."""

    value: str = Field(pattern=NAME_PATTERN, description="what the operator sends")
    label_zh: str = Field(min_length=1, description="Chinese label")
    code: int = Field(description="the number written to the device for it")


class Parameter(_Frozen):
    """One argument of a command. int and float parameters need `min` and `max` (the range is
    enforced before anything is sent); an enum lists its `choices`."""

    name: str = Field(pattern=NAME_PATTERN, description="snake_case, as the operator sends it")
    label_zh: str = Field(min_length=1, description="Chinese label shown to operators")
    type: Literal["bool", "int", "float", "enum"]
    unit: str = Field("", description="one of the profile units")
    min: float | None = Field(None, description="smallest allowed value (int, float)")
    max: float | None = Field(None, description="largest allowed value (int, float)")
    default: ParamValue | None = Field(None, description="used when the operator gives none "
                                       "(None: the parameter is required)")
    choices: tuple[Choice, ...] = Field((), description="enum only: the allowed values")

    @model_validator(mode="after")
    def _check(self) -> Parameter:
        numeric = self.type in {"int", "float"}
        if numeric and (self.min is None or self.max is None):
            raise ValueError(f"a {self.type} parameter needs min and max")
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"a {self.type} parameter takes no min/max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must be <= max")
        if (self.type == "enum") != bool(self.choices):
            raise ValueError("choices are required for, and allowed only for, an enum")
        values = [c.value for c in self.choices]
        if len(set(values)) != len(values):
            raise ValueError("duplicate choice values")
        if self.default is not None:
            problem = _parameter_problem(self, self.default)
            if problem:
                raise ValueError(f"default: {problem[1]}")
        return self

    @property
    def code_range(self) -> tuple[float, float] | None:
        """Smallest and largest number this parameter can put on the wire (None for bool)."""
        if self.type == "enum":
            codes = [c.code for c in self.choices]
            return min(codes), max(codes)
        if self.min is None or self.max is None:
            return None
        return self.min, self.max

    def code(self, value: ParamValue) -> Constant:
        """The number (or bool) a validated value puts on the wire."""
        if self.type == "enum":
            return next(c.code for c in self.choices if c.value == value)
        return value  # type: ignore[return-value]


class RegisterTarget(_Frozen):
    """A register the profile has no point for (e.g. a write-only command register); it is
    validated like a read_write point and must not overlap any point (name the point instead)."""

    register_type: Literal["coil", "holding"]
    address: int = Field(ge=0, le=65535, description="0-based address")
    type: REGISTER_TYPES
    byte_order: Literal["big", "little"] = "big"
    word_order: Literal["big", "little"] = "big"
    scale: float = Field(1.0, description="raw = (engineering - offset) / scale")
    offset: float = 0.0


class ModbusWrite(_Frozen):
    """Write one point (or a `raw_register` no point covers) with function code 5 (one coil),
    15 (coils), 6 (one holding register) or 16 (holding registers). The point must be
    read_write; one bit of a holding register cannot be written (it would overwrite the others)."""

    kind: Literal["modbus_write"]
    function_code: Literal[5, 6, 15, 16]
    point: str | None = Field(None, pattern=NAME_PATTERN, description="the point to write")
    raw_register: RegisterTarget | None = Field(None, description="or a register no point "
                                                "covers")
    value: Operand = Field(description="engineering value: a constant or {parameter: name}")

    @model_validator(mode="after")
    def _check_target(self) -> ModbusWrite:
        if (self.point is None) == (self.raw_register is None):
            raise ValueError("give exactly one of point or raw_register")
        return self


class Cjt188Valve(_Frozen):
    """The CJ/T 188 valve control: control code 04H (write data), data identifier A017H
    (写阀门控制), one data byte 55H to open or 99H to close; the meter answers 84H with its
    status word, whose valve bits the `valve_open` point reads."""

    # CJ/T 188-2004 write-data item A017 "写阀门控制". Checked against public implementations:
    # xijunzhou/sdqr_energy_node_class-20180705 Src/meter/cj188.h (CJ188_FRAME_WRITE_DATA 0x04,
    # answer 0x84), and other public CJ/T 188 drivers that define DI 0xA017 "写阀门控制" with
    # 0x55 "开阀控制操作" / 0x99 "关阀控制操作" (byte order on the wire A0 17 or 17 A0, as for
    # 901F: the protocol's swap_di applies).
    CONTROL_CODE: ClassVar[int] = 0x04
    DATA_ID: ClassVar[int] = 0xA017
    ACTION_BYTES: ClassVar[Mapping[str, int]] = {"open": 0x55, "close": 0x99}

    kind: Literal["cjt188_valve"]
    action: Literal["open", "close"]

    @property
    def action_byte(self) -> int:
        return self.ACTION_BYTES[self.action]


class PayloadField(_Frozen):
    """One value of a LoRaWAN downlink payload, laid out like an uplink point's `byte_offset`."""

    byte_offset: int = Field(ge=0, lt=MAX_DOWNLINK_BYTES, description="position in the payload")
    type: PAYLOAD_TYPES
    byte_order: Literal["big", "little"] = "big"
    scale: float = Field(1.0, description="raw = (engineering - offset) / scale")
    offset: float = 0.0
    value: Operand = Field(description="engineering value: a constant or {parameter: name}")

    @model_validator(mode="after")
    def _check(self) -> PayloadField:
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.type == "bool" and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError("type bool takes no scale/offset")
        return self

    @property
    def size(self) -> int:
        return PAYLOAD_SIZES[self.type]


class LorawanDownlink(_Frozen):
    """A class A downlink on `fport`: it waits for the device's next uplink and goes out in its
    receive window. The payload is the fields at their byte offsets; bytes no field covers are
    0."""

    kind: Literal["lorawan_downlink"]
    fport: int = Field(ge=1, le=223, description="FPort of the downlink")
    payload: tuple[PayloadField, ...] = Field(min_length=1, description="the payload's fields")

    @model_validator(mode="after")
    def _check_layout(self) -> LorawanDownlink:
        taken: dict[int, int] = {}
        for i, f in enumerate(self.payload):
            for byte in range(f.byte_offset, f.byte_offset + f.size):
                if byte in taken:
                    raise ValueError(f"payload[{i}] overlaps payload[{taken[byte]}] at byte "
                                     f"{byte}")
                taken[byte] = i
        if self.length > MAX_DOWNLINK_BYTES:
            raise ValueError(f"payload is {self.length} bytes; at most {MAX_DOWNLINK_BYTES}")
        return self

    @property
    def length(self) -> int:
        return max(f.byte_offset + f.size for f in self.payload)


CommandMapping = Annotated[ModbusWrite | Cjt188Valve | LorawanDownlink, Field(discriminator="kind")]
MAPPING_KINDS = (ModbusWrite, Cjt188Valve, LorawanDownlink)
# Which mapping kind each protocol executes (a protocol not listed takes no commands).
MAPPING_FOR_PROTOCOL: dict[str, str] = {"modbus_tcp": "modbus_write",
                                        "modbus_rtu": "modbus_write",
                                        "cjt188": "cjt188_valve", "lorawan": "lorawan_downlink"}


class Readback(_Frozen):
    """After executing, read `point` until it equals `expect` (± `tolerance`); give up after
    `within_s`, counted from the execution. The edge reads the point itself rather than wait for
    the next poll; a LoRaWAN device's value arrives with its next uplink, and `within_s` counts
    from the downlink's transmission."""

    point: str = Field(pattern=NAME_PATTERN, description="the point to read back")
    expect: Operand = Field(description="a constant or {parameter: name}")
    tolerance: float = Field(0.0, ge=0, description="allowed difference (numeric points)")
    within_s: float = Field(10.0, gt=0, le=86400, description="how long to wait for it")


class Command(_Frozen):
    """One operation an operator may send to a device of this model."""

    name: str = Field(pattern=NAME_PATTERN, description="snake_case, unique in the profile")
    label_zh: str = Field(min_length=1, description="Chinese label shown to operators")
    description_zh: str = Field("", description="longer Chinese text")
    parameters: tuple[Parameter, ...] = Field((), description="its arguments")
    mapping: CommandMapping = Field(description="how it is executed, by `kind` (must suit the "
                              "profile's protocol)")
    readback: Readback | None = Field(None, description="the point that confirms the effect")
    interlocks: tuple[str, ...] = Field((), description="ids of the profile's interlocks "
                                        "checked right before execution")
    confirm: bool = Field(False, description="dangerous: the operator must confirm it")

    @model_validator(mode="after")
    def _check_parameters(self) -> Command:
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError("duplicate parameter names")
        if len(set(self.interlocks)) != len(self.interlocks):
            raise ValueError("an interlock is listed twice")
        used = {op.parameter for _, op in self.operands() if isinstance(op, ParamRef)}
        unknown = sorted(used - set(names))
        if unknown:
            raise ValueError(f"refers to unknown parameter(s) {', '.join(unknown)}")
        unused = [n for n in names if n not in used]
        if unused:
            raise ValueError(f"parameter(s) {', '.join(unused)} are not used by the mapping or "
                             "the readback")
        return self

    def operands(self) -> list[tuple[tuple[str | int, ...], Operand]]:
        """Every value the command uses, with its field path inside the command."""
        found: list[tuple[tuple[str | int, ...], Operand]] = []
        if isinstance(self.mapping, ModbusWrite):
            found.append((("mapping", "value"), self.mapping.value))
        elif isinstance(self.mapping, LorawanDownlink):
            found += [(("mapping", "payload", i, "value"), f.value)
                      for i, f in enumerate(self.mapping.payload)]
        if self.readback is not None:
            found.append((("readback", "expect"), self.readback.expect))
        return found

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def resolve(self, operand: Operand, params: Mapping[str, ParamValue]) -> Constant:
        """The engineering value of `operand` given validated parameters."""
        if isinstance(operand, ParamRef):
            return self.parameter(operand.parameter).code(params[operand.parameter])
        return operand


# -- interlocks -----------------------------------------------------------------------------


class _Interlock(_Frozen):
    id: str = Field(pattern=NAME_PATTERN, description="unique in the profile")
    message_zh: str = Field(min_length=1, description="refusal text, str.format template: "
                            "{device}, {value} (what tripped it), {limit}, and the point's "
                            "{unit} and {label}")
    max_age_s: float = Field(60.0, gt=0, description="readings older than this are stale: "
                             "the command is refused (not shorter than the poll interval)")

    @model_validator(mode="after")
    def _check_template(self) -> _Interlock:
        try:
            self.message_zh.format(**INTERLOCK_TEMPLATE_FIELDS)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"message_zh template is invalid: {err}") from err
        return self

    def watched_points(self) -> list[str]:
        """Points the interlock reads (checked against the profile)."""
        point = getattr(self, "point", None)
        return [point] if point else []


class ReadingInterlock(_Interlock):
    """Refuse unless a fresh reading of `point` satisfies `point op value` (e.g. no pump start
    while sump_level < the dry-run level). {value} is the reading, {limit} `value`."""

    kind: Literal["reading"]
    point: str = Field(pattern=NAME_PATTERN)
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    value: float | bool


class MinOffTimeInterlock(_Interlock):
    """A start waits `off_s` after the bool `point` last turned false (the motor cools, the
    water column settles). {value} is the seconds since it stopped, {limit} `off_s`. The edge
    knows stops from the readings it has polled: one it has not watched for `off_s` yet (just
    restarted) counts as stopped too recently."""

    kind: Literal["min_off_time"]
    point: str = Field(pattern=NAME_PATTERN, description="a bool point (running)")
    off_s: float = Field(gt=0, description="seconds between stop and the next start")


class MaxStartsInterlock(_Interlock):
    """At most `starts` starts (the bool `point` turning true, or a start command with this
    interlock executed) in the last hour. {value} is the count, {limit} `starts`."""

    kind: Literal["max_starts_per_hour"]
    point: str = Field(pattern=NAME_PATTERN, description="a bool point (running)")
    starts: int = Field(ge=1, le=3600)


class StaggerInterlock(_Interlock):
    """No two starts among `points` within `within_s` (e.g. both pumps of a station, so their
    inrush currents do not add up). A start is one of the points turning true or a command
    with this interlock executed. {value} is the seconds since the last start, {limit}
    `within_s`, {label} the point that started."""

    kind: Literal["stagger"]
    points: tuple[str, ...] = Field(min_length=2, description="bool points")
    within_s: float = Field(gt=0, description="seconds that must separate two starts")

    def watched_points(self) -> list[str]:
        return list(self.points)


Interlock = Annotated[ReadingInterlock | MinOffTimeInterlock | MaxStartsInterlock
                      | StaggerInterlock, Field(discriminator="kind")]
INTERLOCK_KINDS = (ReadingInterlock, MinOffTimeInterlock, MaxStartsInterlock, StaggerInterlock)
BOOL_INTERLOCK_KINDS = {"min_off_time", "max_starts_per_hour", "stagger"}


# -- parameter validation -------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterProblem:
    parameter: str
    message_zh: str
    message_en: str


@dataclass(frozen=True)
class ParameterError:
    """Why the parameters of a command were refused, for the operator (zh) and the log (en)."""

    command: str
    problems: tuple[ParameterProblem, ...]

    @property
    def message_zh(self) -> str:
        return "；".join(p.message_zh for p in self.problems)

    @property
    def message_en(self) -> str:
        return "; ".join(p.message_en for p in self.problems)


def validate_parameters(command: Command, params: Mapping[str, object]
                        ) -> dict[str, ParamValue] | ParameterError:
    """Check `params` against the command's parameters; return them with defaults filled in,
    or every problem (unknown names, missing values, wrong types, out of range)."""
    problems: list[ParameterProblem] = []
    known = {p.name: p for p in command.parameters}
    names = ", ".join(known) or "无"
    for name in params:
        if name not in known:
            problems.append(ParameterProblem(
                name, f"未知参数 {name}（本命令的参数：{names}）",
                f"unknown parameter {name!r} (parameters of {command.name}: "
                f"{', '.join(known) or 'none'})"))
    result: dict[str, ParamValue] = {}
    for p in command.parameters:
        value = params.get(p.name, p.default)
        if value is None:
            problems.append(ParameterProblem(p.name, f"缺少参数 {p.label_zh}（{p.name}）",
                                             f"missing parameter {p.name!r}"))
            continue
        problem = _parameter_problem(p, value)
        if problem:
            problems.append(ParameterProblem(p.name, *problem))
            continue
        result[p.name] = _normalised(p, value)
    if problems:
        return ParameterError(command.name, tuple(problems))
    return result


def _normalised(p: Parameter, value: object) -> ParamValue:
    """int parameters as int (50.0 -> 50), float ones as float; others unchanged."""
    if p.type == "int":
        return int(value)  # type: ignore[call-overload]
    if p.type == "float":
        return float(value)  # type: ignore[arg-type]
    return value  # type: ignore[return-value]


def _parameter_problem(p: Parameter, value: object) -> tuple[str, str] | None:
    """(zh, en) messages when `value` does not suit `p`, else None."""
    if p.type == "bool":
        if isinstance(value, bool):
            return None
        return (f"{p.label_zh}应为 true 或 false，收到 {value!r}",
                f"{p.name} takes true or false, not {value!r}")
    if p.type == "enum":
        allowed = [c.value for c in p.choices]
        if value in allowed:
            return None
        return (f"{p.label_zh}应为以下之一：{'、'.join(allowed)}，收到 {value!r}",
                f"{p.name} must be one of {', '.join(allowed)}, not {value!r}")
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or (p.type == "int" and not integral)):
        kind_zh = "整数" if p.type == "int" else "数值"
        return (f"{p.label_zh}应为{kind_zh}，收到 {value!r}",
                f"{p.name} takes {'an integer' if p.type == 'int' else 'a number'}, "
                f"not {value!r}")
    assert p.min is not None and p.max is not None
    if not p.min <= value <= p.max:
        return (f"{p.label_zh} {value:g}{p.unit} 超出允许范围 {p.min:g}–{p.max:g}{p.unit}",
                f"{p.name} {value:g} is outside {p.min:g}..{p.max:g} {p.unit}".rstrip())
    return None


def raw_fits(data_type: str, scale: float, offset: float, value: float) -> bool:
    """Whether engineering `value` scales to a raw value `data_type` can carry."""
    if data_type == "bool":
        return isinstance(value, bool)
    raw = (value - offset) / scale
    if data_type != "float32":
        raw = round(raw)
    low, high = RAW_RANGES[data_type]
    return math.isfinite(raw) and low <= raw <= high
