"""Decide whether a command may run now: parameters first, then the command's interlocks.

`check` is called right before execution (after the command has waited its turn in the
device's queue), against the device's `DeviceHistory`. The first problem refuses the command:
nothing is sent to the device. Every interlock first needs a fresh reading of each point it
watches (no older than its `max_age_s`); a missing or stale one refuses with
`STALE_READING_ZH`, whose {value} is the reading's age in seconds (None when missing).

- reading: refuse unless `point op value` holds for the reading ({value}: the reading).
- min_off_time: a point that is off must have been off `off_s` ({value}: seconds since the stop
  or, when the edge saw no stop, since it began watching the point). A running point passes
  (the start changes nothing).
- max_starts_per_hour: refuse once `starts` starts happened in the last hour ({value}: the
  count). Only starts the edge saw or commanded count: after a restart it is a lower bound.
- stagger: refuse while any of `points` started less than `within_s` ago ({value}: seconds
  since that start, {label}: that point).

After a command has been executed, `record_execution` tells the history about the start it
made, so the next command sees it before a poll does. Pure: no I/O, the clock is a parameter.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from device_profiles.commands import (
    STALE_READING_ZH,
    Command,
    Interlock,
    MaxStartsInterlock,
    MinOffTimeInterlock,
    ParameterError,
    ParamValue,
    ReadingInterlock,
    StaggerInterlock,
    validate_parameters,
)
from device_profiles.schema import Profile
from edge_agent.commands.history import HOUR_MS, DeviceHistory

Number = bool | int | float

OPS: dict[str, Callable[[object, object], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Verdict:
    """ok, or why not: the interlock (or parameter) that refused, the value that tripped it,
    the limit, a Chinese message for operators and an English reason for logs. `params` are
    the validated parameters (defaults filled in) when ok."""

    ok: bool
    params: dict[str, ParamValue] = field(default_factory=dict)
    interlock: str | None = None
    parameter: str | None = None
    value: Number | None = None
    limit: Number | None = None
    message_zh: str = ""
    reason_en: str = ""


@dataclass(frozen=True)
class _Context:
    profile: Profile
    history: DeviceHistory
    now_ms: int
    device: str


def check(profile: Profile, command: str, params: Mapping[str, object],
          history: DeviceHistory, now_ms: int, device_name: str | None = None) -> Verdict:
    """May `command` with `params` run on the device now? `device_name` fills {device} in the
    messages (default: the history's device id)."""
    device = device_name if device_name is not None else history.device
    try:
        cmd = profile.command(command)
    except KeyError:
        known = ", ".join(c.name for c in profile.commands) or "无"
        return Verdict(False, message_zh=f"{device}不支持命令 {command}（可用命令：{known}）",
                       reason_en=f"unknown command {command!r} for profile {profile.id}")
    validated = validate_parameters(cmd, params)
    if isinstance(validated, ParameterError):
        return Verdict(False, parameter=validated.problems[0].parameter,
                       message_zh=f"{device}{cmd.label_zh}被拒绝：{validated.message_zh}",
                       reason_en=f"{cmd.name}: {validated.message_en}")
    ctx = _Context(profile, history, now_ms, device)
    for lock_id in cmd.interlocks:
        refusal = _check_interlock(ctx, profile.interlock(lock_id))
        if refusal is not None:
            return refusal
    return Verdict(True, params=validated)


def record_execution(profile: Profile, command: str, history: DeviceHistory,
                     ts_ms: int) -> list[str]:
    """Record the start a just-executed command made; return the points it started.

    A command starts its read-back point when that is a bool point expected true and one of
    the command's start-counting interlocks (min_off_time, max_starts_per_hour, stagger)
    watches it."""
    cmd = profile.command(command)
    point = _started_point(profile, cmd)
    if point is None:
        return []
    history.record_start(point, ts_ms)
    return [point]


def _started_point(profile: Profile, cmd: Command) -> str | None:
    readback = cmd.readback
    if readback is None or readback.expect is not True:
        return None
    for lock_id in cmd.interlocks:
        lock = profile.interlock(lock_id)
        if lock.kind != "reading" and readback.point in lock.watched_points():
            return readback.point
    return None


def _check_interlock(ctx: _Context, lock: Interlock) -> Verdict | None:
    for point in lock.watched_points():
        stale = _stale(ctx, lock, point)
        if stale is not None:
            return stale
    if isinstance(lock, ReadingInterlock):
        return _reading(ctx, lock)
    if isinstance(lock, MinOffTimeInterlock):
        return _min_off_time(ctx, lock)
    if isinstance(lock, MaxStartsInterlock):
        return _max_starts(ctx, lock)
    assert isinstance(lock, StaggerInterlock)
    return _stagger(ctx, lock)


def _stale(ctx: _Context, lock: Interlock, point: str) -> Verdict | None:
    reading = ctx.history.reading(point)
    age_s = None if reading is None else (ctx.now_ms - reading[1]) / 1000
    if age_s is not None and age_s <= lock.max_age_s:
        return None
    label = ctx.profile.point(point).label_zh
    message = STALE_READING_ZH.format(device=ctx.device, interlock=lock.id, label=label,
                                      max_age_s=lock.max_age_s)
    what = "no reading" if age_s is None else f"last reading {age_s:.1f} s old"
    return Verdict(False, interlock=lock.id, value=age_s, limit=lock.max_age_s,
                   message_zh=message,
                   reason_en=f"interlock {lock.id}: {point}: {what}, needs one within "
                             f"{lock.max_age_s:g} s")


def _refuse(ctx: _Context, lock: Interlock, point: str, value: Number, limit: Number,
            reason_en: str) -> Verdict:
    p = ctx.profile.point(point)
    message = lock.message_zh.format(device=ctx.device, value=value, limit=limit, unit=p.unit,
                                     label=p.label_zh)
    return Verdict(False, interlock=lock.id, value=value, limit=limit, message_zh=message,
                   reason_en=f"interlock {lock.id}: {reason_en}")


def _fresh_value(ctx: _Context, point: str) -> Number:
    reading = ctx.history.reading(point)
    assert reading is not None  # _stale checked it
    return reading[0]


def _reading(ctx: _Context, lock: ReadingInterlock) -> Verdict | None:
    value = _fresh_value(ctx, lock.point)
    if OPS[lock.op](value, lock.value):
        return None
    unit = ctx.profile.point(lock.point).unit
    return _refuse(ctx, lock, lock.point, value, lock.value,
                   f"{lock.point} {value}{' ' + unit if unit else ''} fails {lock.op} "
                   f"{lock.value}")


def _min_off_time(ctx: _Context, lock: MinOffTimeInterlock) -> Verdict | None:
    if _fresh_value(ctx, lock.point) is True:
        return None
    stop = ctx.history.last_stop(lock.point)
    since = stop if stop is not None else ctx.history.watched_since(lock.point)
    assert since is not None
    off_s = (ctx.now_ms - since) / 1000
    if off_s >= lock.off_s:
        return None
    seen = "stopped" if stop is not None else "watched off (no stop seen)"
    return _refuse(ctx, lock, lock.point, off_s, lock.off_s,
                   f"{lock.point} {seen} {off_s:.1f} s ago, needs {lock.off_s:g} s")


def _max_starts(ctx: _Context, lock: MaxStartsInterlock) -> Verdict | None:
    count = len(ctx.history.starts(lock.point, ctx.now_ms - HOUR_MS))
    if count < lock.starts:
        return None
    return _refuse(ctx, lock, lock.point, count, lock.starts,
                   f"{lock.point} started {count} times in the last hour, at most "
                   f"{lock.starts}")


def _stagger(ctx: _Context, lock: StaggerInterlock) -> Verdict | None:
    starts = [(ts, point) for point in lock.points
              if (ts := ctx.history.last_start(point)) is not None]
    if not starts:
        return None
    ts, point = max(starts)
    since_s = (ctx.now_ms - ts) / 1000
    if since_s >= lock.within_s:
        return None
    return _refuse(ctx, lock, point, since_s, lock.within_s,
                   f"{point} started {since_s:.1f} s ago, starts among "
                   f"{', '.join(lock.points)} need {lock.within_s:g} s between them")
