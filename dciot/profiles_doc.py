"""Renders device_profiles/README.md from the pydantic models in device_profiles/schema.py,
so the reference cannot drift from the validator (tests/device_profiles/test_readme.py)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from device_profiles import commands, rules, schema

INTRO = """# Device profiles

One YAML file per device model: `device_profiles/<domain folder>/<profile id>.yaml`, the file
stem equal to `id`. A profile describes a *model* (its registers, scaling, units and default
alarm rules); device *instances* (address, unit id, gateway) live in the gateway config and refer
to the profile by id. A new device model needs a profile, not code.

Check profiles with `dciot profiles check [PATH]`: every error is printed with its file and field
path (e.g. `points[8] (flow).type`) and the command exits non-zero. A bad profile stops the edge
agent and the cloud at start-up; nothing is skipped or corrected silently.

Engineering value = raw × `scale` + `offset` (edge_agent/scaling.py). Addresses are 0-based
protocol addresses (a manual's 40001 is holding register 0).

This file is generated from `device_profiles/schema.py` by `dciot profiles doc`; do not edit it
by hand.
"""

COMMANDS_INTRO = """## Commands and interlocks

A profile may declare `commands` (what operators may send a device of the model) and
`interlocks` (conditions the edge checks against fresh readings right before executing a
command that lists them; a refusal names the interlock and the value that tripped it, in
Chinese). The edge validates the parameters (type, range; `validate_parameters` in
`device_profiles/commands.py`), checks the interlocks, executes the `mapping`, then reads back
the `readback` point. Values written come from a constant or `{parameter: name}` and are scaled
like points: raw = (engineering − `offset`) / `scale`.

`dciot profiles check` rejects a command whose mapping, parameter, read-back point or interlock
names something the profile does not have or cannot use: the point must exist and be
`read_write`, the function code must suit its register table and width, a value must fit the
data type, the mapping kind must be the one the profile's protocol executes, interlocks on
on/off state need bool points, `max_age_s` must not be shorter than the poll interval, and every
interlock must be used by a command.
"""


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Annotated:
        return _type_name(get_args(annotation)[0])
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in get_args(annotation))
    if origin is not None:
        args = [a for a in get_args(annotation) if a is not type(None) and a is not Ellipsis]
        names = " or ".join(_type_name(a) for a in args)
        return f"list of {names}" if origin in (tuple, list) else names
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return ", ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _model_table(model: type[BaseModel]) -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        default = "required" if info.default is PydanticUndefined else f"`{info.default!r}`"
        if info.default_factory is not None:
            default = "`()`"
        doc = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_name(info.annotation)} | {default} | {doc} |")
    return "\n".join(rows)


def _commands_section() -> str:
    kinds = ["| protocol | mapping kind |", "|---|---|"]
    for protocol, mapping in commands.MAPPING_FOR_PROTOCOL.items():
        kinds.append(f"| `{protocol}` | `{mapping}` |")
    kinds.append("| `gbt26875` | none (the protocol takes no commands) |")
    codes = ["| function code | writes | registers |", "|---|---|---|"]
    for code, (table, words) in commands.FUNCTION_CODES.items():
        codes.append(f"| {code} | {table} | {words or 'one or more'} |")
    parts = [COMMANDS_INTRO, "\n".join(kinds) + "\n", "\n".join(codes) + "\n"]
    models: list[type[BaseModel]] = [
        commands.Command, commands.Parameter, commands.Choice, commands.ParamRef,
        *commands.MAPPING_KINDS, commands.RegisterTarget, commands.PayloadField,
        commands.Readback, *commands.INTERLOCK_KINDS]
    for model in models:
        doc = (model.__doc__ or "").strip()
        parts.append(f"### {model.__name__}\n\n{doc}\n\n{_model_table(model)}\n")
    return "\n".join(parts)


def render_profiles_readme() -> str:
    sections = [INTRO]
    models: list[type[BaseModel]] = [
        schema.Profile, schema.Source, schema.ModbusTcpProtocol, schema.ModbusRtuProtocol,
        schema.Cjt188Protocol, schema.Gbt26875Protocol, schema.LorawanProtocol, schema.Point,
        *rules.RULE_KINDS, rules.Condition]
    for model in models:
        doc = (model.__doc__ or "").strip()
        decoded = model.__dict__.get("fields")
        names = ("\n\nFields its codec decodes (a point's `field`): "
                 + ", ".join(f"`{f}`" for f in sorted(decoded))) if decoded else ""
        sections.append(f"## {model.__name__}\n\n{doc}{names}\n\n{_model_table(model)}\n")
    sections.append(_commands_section())
    units = ", ".join(f"`{u}`" if u else "`\"\"` (none)" for u in sorted(schema.UNITS))
    sections.append(f"## Units\n\n{units}\n")
    type_rows = ["| data type | register types | scale/offset | word_order | bit |",
             "|---|---|---|---|---|"]
    for data_type, rule in schema.TYPE_RULES.items():
        tables = ", ".join(sorted(t.value for t in rule.register_types))
        scale = "yes" if rule.allows_scale else "no"
        type_rows.append(f"| `{data_type.value}` | {tables or 'none (payloads only)'} | {scale} "
                     f"| {'yes' if rule.allows_word_order else 'no'} "
                     f"| {'yes (holding/input)' if rule.allows_bit else 'no'} |")
    sections.append("## What each data type allows\n\n" + "\n".join(type_rows) + "\n")
    return "\n".join(sections)
