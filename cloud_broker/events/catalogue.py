"""The event catalogue (事项清单): for every kind of alarm that becomes an event, its category
(类别), grade (等级), responsible department (责任部门), handling time limit and closing
standard (结案标准). Data in catalogue.yaml beside this module; format in README.md.

An entry is keyed by (domain, rule id). `check_catalogue` compares it with the device profiles
at start-up: an entry naming a rule that no profile of its domain declares is an error (a typo
or a renamed rule would silently stop events); a profile rule with no entry is only reported
as "not mapped" (its alarms stay alarms and the centre answers 422 for them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud_broker.events.lifecycle import DEPARTMENT_PATTERN
from device_profiles.rules import NAME_PATTERN
from device_profiles.schema import Domain, Profile

CATALOGUE_PATH = Path(__file__).resolve().parent / "catalogue.yaml"
SCHEMA_VERSION = 1


class CatalogueError(Exception):
    """The catalogue cannot be read, is invalid, or names rules that do not exist."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: invalid event catalogue\n" +
                         "\n".join(f"  {p}" for p in problems))


class Grade(StrEnum):
    """一级 is the most urgent."""

    first = "一级"
    second = "二级"
    third = "三级"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Department(_Frozen):
    id: str = Field(pattern=DEPARTMENT_PATTERN, description="used in API calls and MQTT topics")
    name_zh: str = Field(min_length=1, description="e.g. 排水服务中心")


class CatalogueEntry(_Frozen):
    """One kind of event: what an alarm of `rule` in `domain` becomes."""

    domain: Domain
    rule: str = Field(pattern=NAME_PATTERN, description="alarm rule id in the domain's profiles")
    category: str = Field(min_length=1, description="类别, e.g. 排水防涝/泵站")
    grade: Grade = Field(description="等级: 一级 (most urgent), 二级, 三级")
    department: str = Field(pattern=DEPARTMENT_PATTERN, description="责任部门 id")
    handling_time_limit_minutes: float = Field(gt=0, description="处置时限, from the report "
                                               "until it is handled")
    closing_standard: str = Field(min_length=1, description="结案标准")


class Catalogue(_Frozen):
    schema_version: int = Field(SCHEMA_VERSION, alias="schema")
    departments: tuple[Department, ...] = Field(min_length=1)
    entries: tuple[CatalogueEntry, ...] = ()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check_references(self) -> Catalogue:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema {self.schema_version} is not supported")
        ids = [d.id for d in self.departments]
        problems = [f"department {i!r} is listed twice" for i in sorted(set(ids))
                    if ids.count(i) > 1]
        keys = [(str(e.domain), e.rule) for e in self.entries]
        problems += [f"entry {d}/{r} is listed twice" for d, r in sorted(set(keys))
                     if keys.count((d, r)) > 1]
        problems += [f"entry {e.domain}/{e.rule}: unknown department {e.department!r}"
                     for e in self.entries if e.department not in ids]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def entry(self, domain: str, rule: str) -> CatalogueEntry | None:
        return next((e for e in self.entries if e.domain == domain and e.rule == rule), None)

    def department_name(self, department: str | None) -> str | None:
        return next((d.name_zh for d in self.departments if d.id == department), None)

    def has_department(self, department: str) -> bool:
        return any(d.id == department for d in self.departments)


def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    """Read and validate the catalogue; raise CatalogueError naming every problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CatalogueError(str(path), [f"cannot read: {err}"]) from err
    try:
        return Catalogue.model_validate(data)
    except ValidationError as err:
        problems = [f"{'.'.join(str(x) for x in e['loc']) or '(top level)'}: "
                    f"{e['msg'].removeprefix('Value error, ')}" for e in err.errors()]
        raise CatalogueError(str(path), problems) from err


@dataclass(frozen=True)
class CatalogueCheck:
    """Profile rules with no catalogue entry: "domain/rule" -> the profiles declaring it."""

    unmapped: dict[str, tuple[str, ...]]


def check_catalogue(catalogue: Catalogue, profiles: Iterable[Profile]) -> CatalogueCheck:
    """Raise CatalogueError naming every entry whose rule no profile of its domain declares;
    return the profile rules that are not mapped (not an error)."""
    declared: dict[str, list[str]] = {}
    for profile in profiles:
        for rule in profile.alarms:
            declared.setdefault(f"{profile.domain}/{rule.id}", []).append(profile.id)
    problems = [f"entries[{i}] {e.domain}/{e.rule}: no {e.domain} profile declares rule "
                f"{e.rule!r}" for i, e in enumerate(catalogue.entries)
                if f"{e.domain}/{e.rule}" not in declared]
    if problems:
        raise CatalogueError("event catalogue vs device profiles", problems)
    mapped = {f"{e.domain}/{e.rule}" for e in catalogue.entries}
    return CatalogueCheck({key: tuple(sorted(ids)) for key, ids in sorted(declared.items())
                           if key not in mapped})
