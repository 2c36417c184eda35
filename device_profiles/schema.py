"""Device profile schema and loader: one YAML file per device model.

A profile describes a *model* (registers, scaling, units, default alarm rules); instances
(address, unit id, gateway) live in the gateway config and reference the profile by `id`.

Validation is strict: models are frozen with ``extra="forbid"``, cross-field rules come from
one table (``TYPE_RULES``), and every error names the file and the field path. A bad profile
stops start-up; nothing is skipped or "fixed" silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from device_profiles.commands import (  # noqa: F401  (re-exported)
    BOOL_INTERLOCK_KINDS,
    FUNCTION_CODES,
    MAPPING_FOR_PROTOCOL,
    Command,
    Interlock,
    LorawanDownlink,
    ModbusWrite,
    Operand,
    ParamRef,
    ReadingInterlock,
    raw_fits,
    validate_parameters,
)
from device_profiles.protocols import (  # noqa: F401  (re-exported)
    ADDRESSING,
    Cjt188Protocol,
    Gbt26875Protocol,
    LorawanProtocol,
    ModbusRtuProtocol,
    ModbusTcpProtocol,
    Protocol,
)
from device_profiles.rules import (  # noqa: F401  (re-exported)
    NAME_PATTERN,
    NUMERIC_KINDS,
    AlarmRule,
    Severity,
    StateAlarm,
    ThresholdAlarm,
)

SCHEMA_VERSION = 1
PROFILES_ROOT = Path(__file__).resolve().parent

PROFILE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class Domain(StrEnum):
    smart_pole = "smart_pole"
    pump_station = "pump_station"
    fire = "fire"
    water = "water"


class RegisterType(StrEnum):
    coil = "coil"
    discrete_input = "discrete_input"
    holding = "holding"
    input = "input"


class DataType(StrEnum):
    bool = "bool"
    int8 = "int8"
    uint8 = "uint8"
    int16 = "int16"
    uint16 = "uint16"
    int32 = "int32"
    uint32 = "uint32"
    float32 = "float32"


class ByteOrder(StrEnum):
    """Order of bytes inside one 16-bit word (big = Modbus standard)."""

    big = "big"
    little = "little"


class WordOrder(StrEnum):
    """Order of 16-bit words in a 32-bit value (big = high word first, "ABCD")."""

    big = "big"
    little = "little"


class Access(StrEnum):
    read = "read"
    read_write = "read_write"


UNITS: frozenset[str] = frozenset(
    {"", "%", "V", "A", "mA", "W", "kW", "kWh", "Hz", "°C", "%RH", "µg/m³", "mg/m³", "%LEL", "dB",
     "dB(A)", "°", "m", "mm", "MPa", "kPa", "m³", "m³/h", "L/s", "rpm", "s", "min", "h", "lx"}
)

WORDS_PER_TYPE: dict[DataType, int] = {
    DataType.bool: 1, DataType.int8: 1, DataType.uint8: 1, DataType.int16: 1, DataType.uint16: 1,
    DataType.int32: 2, DataType.uint32: 2, DataType.float32: 2,
}


@dataclass(frozen=True)
class TypeRule:
    """What a data type demands or forbids of a point (one row of the validation table)."""

    register_types: frozenset[RegisterType]
    allows_scale: bool
    allows_word_order: bool
    allows_bit: bool


_BIT_TABLES = frozenset({RegisterType.coil, RegisterType.discrete_input})
_WORD_TABLES = frozenset({RegisterType.holding, RegisterType.input})

TYPE_RULES: dict[DataType, TypeRule] = {
    DataType.bool: TypeRule(_BIT_TABLES | _WORD_TABLES, allows_scale=False,
                            allows_word_order=False, allows_bit=True),
    DataType.int8: TypeRule(frozenset(), True, False, False),
    DataType.uint8: TypeRule(frozenset(), True, False, False),
    DataType.int16: TypeRule(_WORD_TABLES, True, False, False),
    DataType.uint16: TypeRule(_WORD_TABLES, True, False, False),
    DataType.int32: TypeRule(_WORD_TABLES, True, True, False),
    DataType.uint32: TypeRule(_WORD_TABLES, True, True, False),
    DataType.float32: TypeRule(_WORD_TABLES, True, True, False),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Frozen):
    """Where the register map was taken from."""

    document: str = Field(description="manual or register map the profile was taken from")
    version: str = Field("", description="its edition or version")
    page: str = Field("", description="page or section")


PAYLOAD_BYTES: dict[DataType, int] = {
    DataType.bool: 1, DataType.int8: 1, DataType.uint8: 1, DataType.int16: 2,
    DataType.uint16: 2, DataType.int32: 4, DataType.uint32: 4, DataType.float32: 4}


class Point(_Frozen):
    """One value of the device: where it lives and how raw becomes engineering units.

    Engineering value = raw * scale + offset (see edge_agent/scaling.py).
    """

    name: str = Field(pattern=NAME_PATTERN, description="snake_case English name (InfluxDB "
                      "field)")
    label_zh: str = Field(min_length=1, description="Chinese label shown to operators")
    unit: str = Field("", description="one of the units below")
    register_type: RegisterType | None = Field(None, description="Modbus: register table")
    address: int | None = Field(None, ge=0, le=65535, description="Modbus: 0-based address")
    field: str | None = Field(None, description="CJ/T 188, GB/T 26875: decoded field name")
    byte_offset: int | None = Field(None, ge=0, le=241, description="LoRaWAN: position in the "
                                    "payload")
    type: DataType
    bit: int | None = Field(None, ge=0, le=15, description="bit of a register, byte or field "
                            "(bool only)")
    byte_order: ByteOrder = Field(ByteOrder.big, description="byte order inside a word")
    word_order: WordOrder = Field(WordOrder.big, description="word order of 32-bit values "
                                  "(big = high word first)")
    scale: float = Field(1.0, description="engineering = raw * scale + offset")
    offset: float = 0.0
    access: Access = Access.read

    @property
    def addressing(self) -> str:
        """"register", "field" or "payload": which kind of address the point has."""
        given = [kind for kind, value in (("register", self.register_type), ("field", self.field),
                                          ("payload", self.byte_offset)) if value is not None]
        return given[0] if len(given) == 1 else "ambiguous"

    @model_validator(mode="after")
    def _check_type_rules(self) -> Point:
        if self.unit not in UNITS:
            raise ValueError(f"unit {self.unit!r} is not one of the known units {sorted(UNITS)}")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.addressing == "ambiguous":
            raise ValueError("give exactly one address: register_type+address (Modbus), field "
                             "(CJ/T 188, GB/T 26875) or byte_offset (LoRaWAN)")
        if (self.register_type is None) != (self.address is None):
            raise ValueError("register_type and address go together")
        if self.bit is not None and self.type != DataType.bool:
            raise ValueError("bit is allowed only for a bool point")
        if self.type == DataType.bool and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError("type bool takes no scale/offset")
        if self.addressing == "payload":
            if self.word_order != WordOrder.big:
                raise ValueError("word_order applies to Modbus registers, not payloads")
            if self.bit is not None and self.bit > 7:
                raise ValueError("a payload bit is 0..7 of its byte")
            return self
        if self.addressing == "field":
            return self
        return self._check_register_rules()

    def _check_register_rules(self) -> Point:
        rule = TYPE_RULES[self.type]
        if self.register_type not in rule.register_types:
            allowed = ", ".join(sorted(rule.register_types))
            raise ValueError(f"type {self.type} cannot live in a {self.register_type} register "
                             f"(allowed: {allowed})")
        if not rule.allows_scale and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError(f"type {self.type} takes no scale/offset")
        if not rule.allows_word_order and self.word_order != WordOrder.big:
            raise ValueError(f"word_order applies only to 32-bit types, not {self.type}")
        if self.bit is not None and (not rule.allows_bit or self.register_type in _BIT_TABLES):
            raise ValueError("bit is allowed only for a bool point in a holding/input register")
        if self.access == Access.read_write and self.register_type in {
            RegisterType.discrete_input, RegisterType.input
        }:
            raise ValueError(f"a {self.register_type} register is read-only")
        return self

    @property
    def words(self) -> int:
        """Registers (or bits, for coil/discrete tables) this point occupies."""
        return 1 if self.register_type in _BIT_TABLES else WORDS_PER_TYPE[self.type]

    @property
    def payload_bytes(self) -> int:
        """Bytes this point occupies in a LoRaWAN payload."""
        return PAYLOAD_BYTES[self.type]

    @property
    def is_integer(self) -> bool:
        """True when the engineering value is an integer (stored as an InfluxDB integer)."""
        return (self.type not in {DataType.bool, DataType.float32}
                and self.scale == 1.0 and self.offset == 0.0)


class Profile(_Frozen):
    schema_version: int = Field(SCHEMA_VERSION, alias="schema", description="schema version")
    id: str = Field(pattern=PROFILE_ID_PATTERN, description="equals the file stem")
    vendor: str
    model: str
    description: str = ""
    domain: Domain
    source: Source
    protocol: Protocol = Field(description="how the model is spoken to, by `kind`")
    poll_interval_s: float = Field(10.0, gt=0, le=86400, description="default poll interval")
    points: tuple[Point, ...] = Field(min_length=1, description="at least one")
    alarms: tuple[AlarmRule, ...] = Field((), description="default alarm rules")
    interlocks: tuple[Interlock, ...] = Field((), description="conditions commands check at the "
                                              "edge right before execution, by `kind`")
    commands: tuple[Command, ...] = Field((), description="what operators may send the device")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check_cross_references(self) -> Profile:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema {self.schema_version} is not supported "
                             f"(this build reads schema {SCHEMA_VERSION})")
        names = [p.name for p in self.points]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate point names: {', '.join(duplicates)}")
        self._check_addressing()
        rule_ids = [a.id for a in self.alarms]
        if len(set(rule_ids)) != len(rule_ids):
            raise ValueError("duplicate alarm ids")
        for alarm in self.alarms:
            self._check_rule(alarm)
        self._check_commands()
        return self

    def _check_rule(self, rule: AlarmRule) -> None:
        """A rule may only read points the profile has, of a type it can use."""
        by_name = {p.name: p for p in self.points}
        for name in rule.points():
            point = by_name.get(name)
            if point is None:
                raise ValueError(f"alarm {rule.id!r} refers to unknown point {name!r}")
            if rule.kind in NUMERIC_KINDS and point.type == DataType.bool:
                raise ValueError(f"alarm {rule.id!r} ({rule.kind}) needs a numeric point, "
                                 f"{name!r} is bool")
            if isinstance(rule, StateAlarm) and point.type != DataType.bool:
                raise ValueError(f"alarm {rule.id!r} (state) needs a bool point, {name!r} is "
                                 f"{point.type}")

    def _check_addressing(self) -> None:
        wanted = ADDRESSING[self.protocol.kind]
        for p in self.points:
            if p.addressing != wanted:
                raise ValueError(f"point {p.name!r}: protocol {self.protocol.kind} addresses "
                                 f"points by {wanted}, not by {p.addressing}")
        if wanted == "register":
            _check_overlaps(self.points, _register_slots)
        elif wanted == "field":
            known = getattr(self.protocol, "fields", frozenset())
            for p in self.points:
                if p.field not in known:
                    names = ", ".join(sorted(known))
                    raise ValueError(f"point {p.name!r}: field {p.field!r} is not one the "
                                     f"{self.protocol.kind} codec decodes ({names})")
        else:
            _check_overlaps(self.points, _payload_slots)
            size = getattr(self.protocol, "payload_bytes", None)
            for p in self.points:
                if size is not None and (p.byte_offset or 0) + p.payload_bytes > size:
                    raise ValueError(f"point {p.name!r} does not fit the {size}-byte payload")

    def _check_commands(self) -> None:
        """Every point, parameter and interlock a command names exists and fits; every problem
        is reported with its field path (FieldErrors)."""
        for kind, names in (("interlock ids", [i.id for i in self.interlocks]),
                            ("command names", [c.name for c in self.commands])):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"duplicate {kind}: {', '.join(duplicates)}")
        problems: list[tuple[Loc, str]] = []
        for i, lock in enumerate(self.interlocks):
            problems += [(("interlocks", i, *loc), msg) for loc, msg in _interlock_problems(
                self, lock)]
        for i, command in enumerate(self.commands):
            problems += [(("commands", i, *loc), msg) for loc, msg in _command_problems(
                self, command)]
        used = {name for c in self.commands for name in c.interlocks}
        problems += [(("interlocks", i, "id"), f"interlock {lock.id!r} is used by no command")
                     for i, lock in enumerate(self.interlocks) if lock.id not in used]
        if problems:
            raise FieldErrors(problems)

    def point(self, name: str) -> Point:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)

    def command(self, name: str) -> Command:
        for c in self.commands:
            if c.name == name:
                return c
        raise KeyError(f"profile {self.id} has no command {name!r}; known: "
                       f"{', '.join(c.name for c in self.commands) or 'none'}")

    def interlock(self, interlock_id: str) -> Interlock:
        for lock in self.interlocks:
            if lock.id == interlock_id:
                return lock
        raise KeyError(interlock_id)

    def write_target(self, command: Command) -> Point:
        """The point a modbus_write command writes: the named point, or a read_write point
        built from its raw_register (named after the command). Encode with to_raw/encode_point
        like any point."""
        mapping = command.mapping
        if not isinstance(mapping, ModbusWrite):
            raise TypeError(f"command {command.name!r} is not a modbus_write")
        if mapping.point is not None:
            return self.point(mapping.point)
        assert mapping.raw_register is not None
        return Point(name=command.name, label_zh=command.label_zh, access=Access.read_write,
                     **mapping.raw_register.model_dump())


Loc = tuple[str | int, ...]


class FieldErrors(ValueError):
    """Problems found by a profile-level check, each with the field path it is about, so
    `load_profile` reports them like pydantic's own errors."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))


def _interlock_problems(profile: Profile, lock: Interlock) -> list[tuple[Loc, str]]:
    by_name = {p.name: p for p in profile.points}
    field = "points" if lock.kind == "stagger" else "point"
    problems: list[tuple[Loc, str]] = []
    for name in lock.watched_points():
        point = by_name.get(name)
        if point is None:
            problems.append(((field,), f"interlock {lock.id!r} refers to unknown point {name!r}"))
        elif lock.kind in BOOL_INTERLOCK_KINDS and point.type != DataType.bool:
            problems.append(((field,), f"interlock {lock.id!r} ({lock.kind}) needs a bool point, "
                             f"{name!r} is {point.type}"))
        elif isinstance(lock, ReadingInterlock):
            problems += _reading_problems(lock, point)
    if len(set(lock.watched_points())) != len(lock.watched_points()):
        problems.append(((field,), "a point is listed twice"))
    if lock.max_age_s < profile.poll_interval_s:
        problems.append((("max_age_s",), f"max_age_s {lock.max_age_s:g} is shorter than the poll "
                         f"interval {profile.poll_interval_s:g} s: every reading would be stale"))
    return problems


def _reading_problems(lock: ReadingInterlock, point: Point) -> list[tuple[Loc, str]]:
    if point.type == DataType.bool:
        if lock.op not in {"==", "!="} or not isinstance(lock.value, bool):
            return [(("value",), f"point {point.name!r} is bool: compare it with == or != to "
                     "true/false")]
    elif isinstance(lock.value, bool):
        return [(("value",), f"point {point.name!r} is numeric: compare it with a number")]
    return []


def _command_problems(profile: Profile, command: Command) -> list[tuple[Loc, str]]:
    wanted = MAPPING_FOR_PROTOCOL.get(profile.protocol.kind)
    if wanted is None:
        return [(("mapping", "kind"), f"protocol {profile.protocol.kind} takes no commands")]
    if command.mapping.kind != wanted:
        return [(("mapping", "kind"), f"protocol {profile.protocol.kind} executes {wanted}, not "
                 f"{command.mapping.kind}")]
    problems: list[tuple[Loc, str]] = []
    known = {lock.id for lock in profile.interlocks}
    problems += [(("interlocks",), f"unknown interlock {name!r}")
                 for name in command.interlocks if name not in known]
    problems += [(("parameters", i, "unit"), f"unit {p.unit!r} is not one of the known units")
                 for i, p in enumerate(command.parameters) if p.unit not in UNITS]
    if isinstance(command.mapping, ModbusWrite):
        problems += _modbus_write_problems(profile, command)
    elif isinstance(command.mapping, LorawanDownlink):
        for i, f in enumerate(command.mapping.payload):
            problem = _operand_problem(command, f.value, f.type, f.scale, f.offset)
            if problem:
                problems.append((("mapping", "payload", i, "value"), problem))
    if command.readback is not None:
        problems += _readback_problems(profile, command)
    return problems


def _modbus_write_problems(profile: Profile, command: Command) -> list[tuple[Loc, str]]:
    mapping = command.mapping
    assert isinstance(mapping, ModbusWrite)
    if mapping.point is not None:
        if mapping.point not in {p.name for p in profile.points}:
            return [(("mapping", "point"), f"unknown point {mapping.point!r}")]
        target, where = profile.point(mapping.point), ("mapping", "point")
        if target.access != Access.read_write:
            return [(where, f"point {target.name!r} is read-only (access: read); it must be "
                     "read_write to be written")]
    else:
        where = ("mapping", "raw_register")
        try:
            target = profile.write_target(command)
        except ValidationError as err:
            return [(where, e["msg"].removeprefix("Value error, ")) for e in err.errors()]
        try:
            _check_overlaps([*profile.points, target], _register_slots)
        except ValueError as err:
            return [(where, f"{err}; name the point instead")]
    table, words = FUNCTION_CODES[mapping.function_code]
    fc = mapping.function_code
    if target.register_type != table:
        return [(("mapping", "function_code"), f"function code {fc} writes {table} registers; "
                 f"{target.name!r} is a {target.register_type}")]
    if target.bit is not None:
        return [(where, f"{target.name!r} is bit {target.bit} of a holding register: writing it "
                 "would overwrite the other bits")]
    if words is not None and target.words > words:
        return [(("mapping", "function_code"), f"function code {fc} writes one register; "
                 f"{target.name!r} ({target.type}) needs {target.words}: use 16")]
    problem = _operand_problem(command, mapping.value, str(target.type), target.scale,
                               target.offset)
    return [(("mapping", "value"), problem)] if problem else []


def _readback_problems(profile: Profile, command: Command) -> list[tuple[Loc, str]]:
    readback = command.readback
    assert readback is not None
    if readback.point not in {p.name for p in profile.points}:
        return [(("readback", "point"), f"unknown point {readback.point!r}")]
    point = profile.point(readback.point)
    if point.type == DataType.bool and readback.tolerance:
        return [(("readback", "tolerance"), "a bool point takes no tolerance")]
    problem = _operand_problem(command, readback.expect, str(point.type), point.scale,
                               point.offset)
    return [(("readback", "expect"), problem)] if problem else []


def _operand_problem(command: Command, operand: Operand, data_type: str, scale: float,
                     offset: float) -> str | None:
    """Why `operand` cannot go into a value of `data_type` with this scaling, or None."""
    if isinstance(operand, ParamRef):
        param = command.parameter(operand.parameter)
        if (data_type == "bool") != (param.type == "bool"):
            return (f"parameter {param.name!r} ({param.type}) cannot feed a {data_type} value")
        span = param.code_range
        if span is not None and not all(raw_fits(data_type, scale, offset, v) for v in span):
            return (f"parameter {param.name!r} range {span[0]:g}..{span[1]:g} does not fit "
                    f"{data_type} (scale {scale:g}, offset {offset:g})")
        return None
    if (data_type == "bool") != isinstance(operand, bool):
        return f"{operand!r} cannot go into a {data_type} value"
    if data_type != "bool" and not raw_fits(data_type, scale, offset, operand):
        return f"{operand!r} does not fit {data_type} (scale {scale:g}, offset {offset:g})"
    return None


def _register_slots(p: Point) -> list[tuple[str, int]]:
    return [(str(p.register_type), a) for a in range(p.address or 0, (p.address or 0) + p.words)]


def _payload_slots(p: Point) -> list[tuple[str, int]]:
    start = p.byte_offset or 0
    return [("payload byte", b) for b in range(start, start + p.payload_bytes)]


def _check_overlaps(points: Iterable[Point], slots: Callable[[Point], list[tuple[str, int]]]
                    ) -> None:
    """Two points may share a register (or payload byte) only as different bits of it."""
    whole: dict[tuple[str, int], str] = {}
    bits: dict[tuple[str, int], dict[int, str]] = {}
    for p in points:
        for key in slots(p):
            owner = whole.get(key)
            if p.bit is None:
                owner = owner or next(iter(bits.get(key, {}).values()), None)
                whole[key] = p.name
            else:
                owner = owner or bits.setdefault(key, {}).get(p.bit)
                bits[key][p.bit] = p.name
            if owner:
                raise ValueError(f"point {p.name!r} overlaps {owner!r} at {key[0]} {key[1]}")


class ProfileError(Exception):
    """A profile file could not be read or is invalid; `problems` lists every error."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def _location(loc: tuple[object, ...], data: object) -> str:
    """Turn a pydantic error location into a readable path, naming points by their name."""
    parts: list[str] = []
    node: object = data
    for item in loc:
        if isinstance(item, int) and isinstance(node, list) and item < len(node):
            node = node[item]
            name = node.get("name") or node.get("id") if isinstance(node, dict) else None
            parts[-1] = f"{parts[-1]}[{item}]" + (f" ({name})" if name else "")
            continue
        if isinstance(node, dict):
            node = node.get(item)
        parts.append(str(item))
    return ".".join(parts) or "(top level)"


def load_profile(path: Path) -> Profile:
    """Read and validate one profile file; raise ProfileError listing every problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ProfileError(path, [f"cannot read YAML: {err}"]) from err
    if not isinstance(data, dict):
        raise ProfileError(path, ["top level must be a mapping"])
    try:
        profile = Profile.model_validate(data)
    except ValidationError as err:
        problems: list[str] = []
        for e in err.errors():
            error = e.get("ctx", {}).get("error")
            if isinstance(error, FieldErrors):
                problems += [f"{_location((*e['loc'], *loc), data)}: {msg}"
                             for loc, msg in error.problems]
            else:
                problems.append(f"{_location(e['loc'], data)}: "
                                f"{e['msg'].removeprefix('Value error, ')}")
        raise ProfileError(path, problems) from err
    if profile.id != path.stem:
        raise ProfileError(path, [f"id: {profile.id!r} must equal the file name {path.stem!r}"])
    if not re.fullmatch(PROFILE_ID_PATTERN, path.stem):
        raise ProfileError(path, [f"file name {path.stem!r} is not a valid profile id"])
    return profile


def profile_files(root: Path = PROFILES_ROOT) -> list[Path]:
    """Every profile file under root (or root itself when it is a file)."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.yaml") if p.is_file())


@dataclass(frozen=True)
class ProfileSet:
    """All profiles of a tree, by id."""

    profiles: dict[str, Profile]

    def get(self, profile_id: str) -> Profile:
        try:
            return self.profiles[profile_id]
        except KeyError:
            raise KeyError(f"unknown profile {profile_id!r}; known: "
                           f"{', '.join(sorted(self.profiles))}") from None


def load_profiles(root: Path = PROFILES_ROOT) -> ProfileSet:
    """Load every profile under root; raise ProfileError for the first bad file.

    Use `check_profiles` to collect every error of every file.
    """
    profiles: dict[str, Profile] = {}
    for path in profile_files(root):
        profile = load_profile(path)
        if profile.id in profiles:
            raise ProfileError(path, [f"id {profile.id!r} is defined twice"])
        profiles[profile.id] = profile
    return ProfileSet(profiles)


def check_profiles(root: Path = PROFILES_ROOT) -> tuple[list[Profile], list[ProfileError]]:
    """Validate every file under root; return the good profiles and every error."""
    good: list[Profile] = []
    errors: list[ProfileError] = []
    for path in profile_files(root):
        try:
            good.append(load_profile(path))
        except ProfileError as err:
            errors.append(err)
    return good, errors
