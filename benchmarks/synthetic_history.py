"""Synthetic InfluxDB history of a district, in the schema of docs/architecture.md "InfluxDB
schema", for benchmarks: line protocol only, no I/O.

A fleet mixes the real profiles (10 % pump stations, 60 % smart poles, 15 % electrical fire
monitors, 15 % LoRaWAN water meters) placed in towns, sites and gateways. Every profile point
gets a plausible value per step: numbers a reflected random walk inside a range (a daily cycle
for temperatures), bools runs of geometric length (pumps run hours, alarm flags rarely), lamps
on at night, cumulative counters the running sum of their rate point; cast to the point's type
(integer, float or bool). Pump stations cover `pump_days`, everything else `overview_days`
(the last part of the same step grid), plus per step:

    device_health   online (rare outages, readings are missing then), status, active_alarms,
                    last_seen, silent_s, lat, lon
    alarm_summary   active per (domain, town, site, rule, severity) from the threshold and
                    state rules evaluated on the values (other rule kinds stay 0)
    event_centre    departments all + four, periods day and month (counts since the period's
                    start, UTC+8), the five rates and average_handling_minutes
    state_changes   every change of a bool point;  alarms  every raise and clear

Health points are written at the reading step, not every 60 s as the ingest does.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cloud_broker.ingest.lineprotocol import (
    FieldValue,
    escape_key,
    escape_measurement,
    format_field,
)
from device_profiles.rules import StateAlarm, ThresholdAlarm
from device_profiles.schema import DataType, Profile, ProfileSet

MIX = (("dc-pumpstation-v1", 0.10), ("dc-elecfire-v1", 0.15),
       ("dc-lorawan-watermeter-v1", 0.15), ("dc-smartpole-v1", None))
"""Profile and share of the fleet; None takes the rest."""
PUMP_PROFILE = "dc-pumpstation-v1"
TOWNS = ("古楼街道", "柳园街道", "新区街道", "湖西街道", "东城街道")
STREETS = (("dongchang-rd", "东昌路"), ("liuyuan-rd", "柳园路"), ("guangyue-rd", "光岳路"),
           ("xinhua-rd", "新华路"), ("huixin-rd", "汇鑫路"))
BUILDINGS = ("市民中心", "人民医院", "第一中学", "东昌商厦", "体育馆", "图书馆")
ESTATES = ("柳园小区", "光岳小区", "湖滨花园", "东城佳苑", "新区家园")
DEPARTMENTS = {"drainage": 6.0, "lighting": 10.0, "fire_rescue": 3.0, "water_supply": 4.0}
"""Departments written besides `all`, with events per day."""
CHINA_OFFSET_MS = 8 * 3_600_000
CENTRE = (36.45, 115.98)


@dataclass(frozen=True)
class Spec:
    """How one point's values are made.

    kind: walk (lo..hi), daily (lo..hi over the local day), counter (running sum of `source` ×
    `factor` per hour), running/flag (bool runs: on `on_h`, off `off_h` hours on average),
    night (bool: 18:00-06:00 local), code (`lo` normally, `hi` during rare episodes).
    `gate`: the value is 0 while this bool point is false.
    """

    kind: str
    lo: float = 0.0
    hi: float = 100.0
    gate: str | None = None
    source: str | None = None
    factor: float = 1.0
    on_h: float = 2.0
    off_h: float = 720.0


FLAG = Spec("flag")
SPECS: dict[str, dict[str, Spec]] = {
    "dc-pumpstation-v1": {
        "pump1_running": Spec("running", on_h=2, off_h=6),
        "pump2_running": Spec("running", on_h=1, off_h=14),
        "pump1_current": Spec("walk", 35, 48, gate="pump1_running"),
        "pump2_current": Spec("walk", 35, 48, gate="pump2_running"),
        "pump1_frequency": Spec("walk", 45, 50, gate="pump1_running"),
        "pump2_frequency": Spec("walk", 45, 50, gate="pump2_running"),
        "sump_level": Spec("walk", 0.4, 4.55),
        "outlet_pressure": Spec("walk", 0.28, 0.38),
        "flow": Spec("walk", 300, 420, gate="pump1_running"),
        "total_volume": Spec("counter", source="flow", factor=1.0),
        "fault_code": Spec("code", 0, 2, on_h=1, off_h=1440),
    },
    "dc-smartpole-v1": {
        "lamp_on": Spec("night"),
        "dimming": Spec("walk", 60, 100, gate="lamp_on"),
        "voltage": Spec("walk", 215, 235),
        "current": Spec("walk", 0.2, 0.55, gate="lamp_on"),
        "active_power": Spec("walk", 45, 110, gate="lamp_on"),
        "energy": Spec("counter", source="active_power", factor=0.001),
        "pm25": Spec("walk", 8, 160),
        "pm10": Spec("walk", 20, 220),
        "temperature": Spec("daily", -2, 30),
        "humidity": Spec("walk", 25, 95),
        "noise": Spec("walk", 42, 77),
        "tilt": Spec("walk", 0, 5.2),
    },
    "dc-elecfire-v1": {
        "residual_current": Spec("walk", 20, 310),
        **{f"cable_temp_{i}": Spec("walk", 18, 71) for i in range(1, 5)},
    },
    "dc-lorawan-watermeter-v1": {
        "total_volume": Spec("counter", source="flow", factor=1.0),
        "battery": Spec("walk", 70, 100),
        "valve_state": Spec("code", 1, 0, on_h=6, off_h=2160),
        "water_temperature": Spec("daily", 6, 22),
        "flow": Spec("walk", 0, 1.2),
    },
}


@dataclass(frozen=True)
class SynthDevice:
    id: str
    profile: Profile
    gateway: str
    town: str
    site: str
    lat: float
    lon: float

    @property
    def domain(self) -> str:
        return str(self.profile.domain)

    @property
    def tags(self) -> dict[str, str]:
        """The reading's tags (a domain measurement)."""
        return {"device": self.id, "gateway": self.gateway, "profile": self.profile.id,
                "site": self.site, "town": self.town}


def fleet(profiles: ProfileSet, devices: int) -> list[SynthDevice]:
    """`devices` devices of the MIX, each with a town, site, gateway and place."""
    counts: dict[str, int] = {}
    for profile_id, share in MIX:
        counts[profile_id] = (max(1, round(devices * share)) if share is not None
                              else devices - sum(counts.values()))
    if counts["dc-smartpole-v1"] < 0:
        raise ValueError(f"--devices {devices} is too few for the mix (at least 4)")
    out: list[SynthDevice] = []
    rng = np.random.default_rng(7)

    def place() -> tuple[float, float]:
        return (round(CENTRE[0] + rng.uniform(-0.03, 0.03), 6),
                round(CENTRE[1] + rng.uniform(-0.04, 0.04), 6))

    for n in range(1, counts[PUMP_PROFILE] + 1):
        out.append(SynthDevice(f"ps-{n:03d}", profiles.get(PUMP_PROFILE), f"gw-pump-{n:02d}",
                               TOWNS[n % len(TOWNS)], f"{n}号扬水站", *place()))
    for n in range(counts["dc-elecfire-v1"]):
        b = n % len(BUILDINGS)
        out.append(SynthDevice(f"ef-{n + 1:03d}", profiles.get("dc-elecfire-v1"),
                               f"gw-fire-{b + 1:02d}", TOWNS[b % len(TOWNS)], BUILDINGS[b],
                               *place()))
    for n in range(counts["dc-lorawan-watermeter-v1"]):
        e = n % len(ESTATES)
        out.append(SynthDevice(f"wm-{n + 1:03d}", profiles.get("dc-lorawan-watermeter-v1"),
                               "gw-lorawan-01", TOWNS[(e + 1) % len(TOWNS)], ESTATES[e],
                               *place()))
    for n in range(counts["dc-smartpole-v1"]):
        s = n % len(STREETS)
        slug, street = STREETS[s]
        out.append(SynthDevice(f"pole-{slug}-{n // len(STREETS) + 1:03d}",
                               profiles.get("dc-smartpole-v1"), f"gw-{slug}", TOWNS[s], street,
                               *place()))
    return out


@dataclass(frozen=True)
class Grid:
    """The step grid: `pump_steps` steps ending at `end_ms`; the others use its last
    `overview_steps`."""

    end_ms: int
    step_ms: int
    pump_steps: int
    overview_steps: int

    @classmethod
    def make(cls, now_ms: int, step_s: int, pump_days: float, overview_days: float) -> Grid:
        step_ms = step_s * 1000
        pump = int(pump_days * 86_400_000 // step_ms)
        overview = min(pump, int(overview_days * 86_400_000 // step_ms))
        return cls(now_ms - now_ms % step_ms, step_ms, pump, overview)

    def times(self, steps: int) -> np.ndarray:
        return self.end_ms - np.arange(steps - 1, -1, -1, dtype=np.int64) * self.step_ms

    @property
    def start_ms(self) -> int:
        return self.end_ms - (self.pump_steps - 1) * self.step_ms


def estimate_points(devices: Sequence[SynthDevice], grid: Grid) -> int:
    """Points written, give or take state changes and alarms."""
    readings = sum(grid.pump_steps if d.profile.id == PUMP_PROFILE else grid.overview_steps
                   for d in devices)
    summaries = len({(d.domain, d.town, d.site, r.id) for d in devices for r in d.profile.alarms})
    per_step = len(devices) + summaries + 2 * (len(DEPARTMENTS) + 1)
    return readings + per_step * grid.overview_steps


# -- values ------------------------------------------------------------------------------------

def _walk(rng: np.random.Generator, n: int, lo: float, hi: float, step_ms: int) -> np.ndarray:
    """A random walk reflected into [lo, hi]."""
    width = hi - lo
    if width <= 0:
        return np.full(n, lo)
    sigma = width * 0.025 * math.sqrt(step_ms / 600_000)
    x = rng.uniform(0, width) + np.cumsum(rng.normal(0.0, sigma, n))
    y = np.mod(x, 2 * width)
    return lo + np.where(y > width, 2 * width - y, y)


def _runs(rng: np.random.Generator, n: int, on_steps: float, off_steps: float) -> np.ndarray:
    """Alternating on/off runs of geometric length (mean on_steps / off_steps)."""
    out = np.zeros(n, dtype=bool)
    on = bool(rng.random() < on_steps / (on_steps + off_steps))
    i = 0
    while i < n:
        length = int(rng.geometric(1.0 / max(1.0, on_steps if on else off_steps)))
        if on:
            out[i:i + length] = True
        i += length
        on = not on
    return out


def _local_hour(ts: np.ndarray) -> np.ndarray:
    return ((ts + CHINA_OFFSET_MS) % 86_400_000) / 3_600_000


def point_values(profile: Profile, ts: np.ndarray, step_ms: int,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every point of `profile` at the times `ts` (bools as bool arrays)."""
    specs = SPECS.get(profile.id, {})
    n = len(ts)
    per_step = step_ms / 3_600_000
    values: dict[str, np.ndarray] = {}
    ordered = sorted(profile.points, key=lambda p: (
        p.type != DataType.bool, specs.get(p.name, FLAG).kind == "counter"))
    for point in ordered:
        spec = specs.get(point.name, FLAG if point.type == DataType.bool else Spec("walk"))
        if spec.kind in ("running", "flag"):
            v: np.ndarray = _runs(rng, n, spec.on_h / per_step, spec.off_h / per_step)
        elif spec.kind == "night":
            hour = _local_hour(ts)
            v = (hour >= 18) | (hour < 6)
        elif spec.kind == "code":
            v = np.where(_runs(rng, n, spec.on_h / per_step, spec.off_h / per_step),
                         spec.hi, spec.lo)
        elif spec.kind == "daily":
            cycle = 0.5 + 0.4 * np.sin(2 * np.pi * (_local_hour(ts) - 9) / 24)
            noise = _walk(rng, n, -0.1, 0.1, step_ms)
            v = spec.lo + (spec.hi - spec.lo) * np.clip(cycle + noise, 0, 1)
        elif spec.kind == "counter":
            rate = values.get(spec.source or "", np.full(n, 1.0))
            v = rng.uniform(100, 10_000) + np.cumsum(rate * spec.factor * per_step)
        else:
            v = _walk(rng, n, spec.lo, spec.hi, step_ms)
        if spec.gate and spec.gate in values and point.type != DataType.bool:
            v = v * values[spec.gate]
        if point.type == DataType.bool:
            values[point.name] = v.astype(bool)
        elif point.is_integer:
            values[point.name] = np.rint(v).astype(np.int64)
        else:
            values[point.name] = np.round(v.astype(float), 3)
    return {p.name: values[p.name] for p in profile.points}


def _hysteresis(x: np.ndarray, rule: ThresholdAlarm) -> np.ndarray:
    """Active where the last crossing was past raise_at (not yet back past clear_at)."""
    mark = np.zeros(len(x), dtype=np.int8)
    if rule.direction == "above":
        mark[x < rule.clear_at] = -1
        mark[x > rule.raise_at] = 1
    else:
        mark[x > rule.clear_at] = -1
        mark[x < rule.raise_at] = 1
    idx = np.where(mark != 0, np.arange(len(x)), 0)
    np.maximum.accumulate(idx, out=idx)
    return mark[idx] == 1


def rule_activity(profile: Profile, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rule id → active per step, for threshold and state rules (others never active)."""
    active: dict[str, np.ndarray] = {}
    n = len(next(iter(values.values())))
    for rule in profile.alarms:
        if isinstance(rule, ThresholdAlarm):
            active[rule.id] = _hysteresis(values[rule.point].astype(float), rule)
        elif isinstance(rule, StateAlarm):
            active[rule.id] = values[rule.point] == rule.raise_when
        else:
            active[rule.id] = np.zeros(n, dtype=bool)
    return active


# -- line protocol -----------------------------------------------------------------------------

def series_lines(measurement: str, tags: Mapping[str, str],
                 columns: Mapping[str, Sequence[FieldValue | None]],
                 ts: Sequence[int]) -> list[str]:
    """One line per timestamp, as `format_line` would write it (None: field left out; a row
    with no field is skipped)."""
    head = escape_measurement(measurement) + "".join(
        f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v)
    encoded = [[f"{escape_key(name)}={format_field(v)}" if v is not None else ""
                for v in values] for name, values in columns.items()]
    lines = []
    for parts, t in zip(zip(*encoded, strict=True), ts, strict=True):
        fields = ",".join(p for p in parts if p)
        if fields:
            lines.append(f"{head} {fields} {t}")
    return lines


def _title(template: str, device: str, value: float, threshold: float) -> str:
    try:
        return template.format(device=device, value=value, threshold=threshold, unit="",
                               label="")
    except (KeyError, IndexError, ValueError):
        return template


@dataclass
class History:
    """What a generation produced (filled while the lines are iterated)."""

    points: Counter[str]
    summary: dict[tuple[str, str, str, str, str], np.ndarray]


class HistoryWriter:
    """Yields the history as lists of lines, one device (or one derived series) at a time."""

    def __init__(self, devices: Sequence[SynthDevice], grid: Grid, seed: int = 1) -> None:
        self.devices = devices
        self.grid = grid
        self.rng = np.random.default_rng(seed)
        self.history = History(Counter(), {})

    def _emit(self, measurement: str, lines: list[str]) -> list[str]:
        self.history.points[measurement] += len(lines)
        return lines

    def chunks(self) -> Iterator[list[str]]:
        grid = self.grid
        over_ts = grid.times(grid.overview_steps)
        summary: dict[tuple[str, str, str, str, str], np.ndarray] = defaultdict(
            lambda: np.zeros(grid.overview_steps, dtype=np.int64))
        for device in self.devices:
            yield from self._device(device, over_ts, summary)
        self.history.summary = dict(summary)
        for key, counts in sorted(summary.items()):
            tags = dict(zip(("domain", "town", "site", "rule", "severity"), key, strict=True))
            yield self._emit("alarm_summary", series_lines(
                "alarm_summary", tags, {"active": counts.tolist()}, over_ts.tolist()))
        yield from self._event_centre(over_ts)

    def _device(self, device: SynthDevice, over_ts: np.ndarray,
                summary: dict[tuple[str, str, str, str, str], np.ndarray]) -> Iterator[list[str]]:
        grid, rng = self.grid, self.rng
        steps = grid.pump_steps if device.profile.id == PUMP_PROFILE else grid.overview_steps
        ts = grid.times(steps)
        values = point_values(device.profile, ts, grid.step_ms, rng)
        per_step = grid.step_ms / 3_600_000
        online = np.ones(steps, dtype=bool)
        online[-grid.overview_steps:] = ~_runs(rng, grid.overview_steps, 3 / per_step,
                                               360 / per_step)
        keep = np.flatnonzero(online)
        ts_list = ts.tolist()
        yield self._emit(device.domain, series_lines(
            device.domain, device.tags, {k: v[keep].tolist() for k, v in values.items()},
            ts[keep].tolist()))
        place = {"domain": device.domain, "town": device.town, "site": device.site}
        for point in device.profile.points:
            if point.type != DataType.bool:
                continue
            v = values[point.name][keep]
            changed = np.flatnonzero(v[1:] != v[:-1]) + 1
            if len(changed):
                yield self._emit("state_changes", series_lines(
                    "state_changes", {"device": device.id, "profile": device.profile.id,
                                      "point": point.name, **place},
                    {"value": v[changed].tolist()}, ts[keep][changed].tolist()))
        active = rule_activity(device.profile, values)
        yield self._emit("alarms", self._alarm_lines(device, values, active, ts_list))
        tail = slice(steps - grid.overview_steps, steps)
        count = np.zeros(grid.overview_steps, dtype=np.int64)
        for rule in device.profile.alarms:
            a = active[rule.id][tail].astype(np.int64)
            count += a
            summary[(device.domain, device.town, device.site, rule.id,
                     str(rule.severity))] += a
        up = online[tail]
        jitter = rng.integers(0, max(1, int(device.profile.poll_interval_s * 1000)),
                              grid.overview_steps)
        seen = np.where(up, over_ts - jitter, 0)
        np.maximum.accumulate(seen, out=seen)
        silent = np.where(seen > 0, (over_ts - seen) / 1000, (over_ts - over_ts[0]) / 1000)
        status = np.where(~up, 2, np.where(count > 0, 1, 0))
        n = grid.overview_steps
        yield self._emit("device_health", series_lines(
            "device_health", {"device": device.id, "gateway": device.gateway,
                              "profile": device.profile.id, **place},
            {"online": up.astype(np.int64).tolist(), "status": status.tolist(),
             "active_alarms": count.tolist(), "last_seen": seen.tolist(),
             "silent_s": np.round(silent, 3).tolist(), "lat": [device.lat] * n,
             "lon": [device.lon] * n}, over_ts.tolist()))

    @staticmethod
    def _alarm_lines(device: SynthDevice, values: Mapping[str, np.ndarray],
                     active: Mapping[str, np.ndarray], ts: list[int]) -> list[str]:
        lines: list[str] = []
        for rule in device.profile.alarms:
            a = active[rule.id]
            edges = np.flatnonzero(np.diff(a.astype(np.int8), prepend=np.int8(0)))
            if not len(edges):
                continue
            point = getattr(rule, "point", "")
            x = values[point].astype(float) if point else np.zeros(len(a))
            for i in edges.tolist():
                raised = bool(a[i])
                threshold = (float(rule.raise_at if raised else rule.clear_at)
                             if isinstance(rule, ThresholdAlarm) else 1.0)
                value = float(x[i])
                tags = {"device": device.id, "gateway": device.gateway,
                        "domain": device.domain, "town": device.town, "site": device.site,
                        "rule": rule.id, "severity": str(rule.severity),
                        "state": "raised" if raised else "cleared"}
                lines += series_lines("alarms", tags, {
                    "alarm_id": [f"{device.id}:{rule.id}:{ts[i]}"],
                    "title": [_title(rule.title_zh, device.id, value, threshold)],
                    "value": [value], "threshold": [threshold]}, [ts[i]])
        return lines

    def _event_centre(self, ts: np.ndarray) -> Iterator[list[str]]:
        rng, n = self.rng, len(ts)
        per_step = self.grid.step_ms / 86_400_000
        local = ts + CHINA_OFFSET_MS
        day_start = local // 86_400_000
        months = local.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
        arrivals = {d: rng.poisson(rate * per_step, n) for d, rate in DEPARTMENTS.items()}
        arrivals["all"] = sum(arrivals.values())  # type: ignore[assignment]
        for period, key in (("day", day_start), ("month", months)):
            starts = np.r_[True, key[1:] != key[:-1]]
            group = np.cumsum(starts) - 1
            for department, arrived in arrivals.items():
                total = np.cumsum(arrived)
                events = total - (total - arrived)[np.flatnonzero(starts)][group]
                shares = {name: _walk(rng, n, lo, hi, self.grid.step_ms) for name, lo, hi in (
                    ("closed", 0.55, 0.8), ("handled", 0.05, 0.15), ("dispatched", 0.04, 0.1),
                    ("accepted", 0.02, 0.06), ("overdue", 0.0, 0.08))}
                counts = {k: np.floor(events * s).astype(np.int64) for k, s in shares.items()}
                counts["reported"] = events - sum(
                    counts[k] for k in ("closed", "handled", "dispatched", "accepted"))
                columns: dict[str, list[FieldValue | None]] = {
                    k: counts[k].tolist() for k in ("reported", "accepted", "dispatched",
                                                    "handled", "closed")}
                columns["open"] = (events - counts["closed"]).tolist()
                columns["overdue"] = counts["overdue"].tolist()
                columns["events"] = events.tolist()
                some = events > 0
                for name, lo, hi in (("discovery_rate", 55, 95), ("dispatch_rate", 85, 100),
                                     ("handling_rate", 75, 100), ("closure_rate", 50, 90),
                                     ("ontime_rate", 70, 100),
                                     ("average_handling_minutes", 30, 240)):
                    v = np.round(_walk(rng, n, lo, hi, self.grid.step_ms), 2)
                    columns[name] = [float(x) if ok else None
                                     for x, ok in zip(v.tolist(), some.tolist(), strict=True)]
                yield self._emit("event_centre", series_lines(
                    "event_centre", {"department": department, "period": period}, columns,
                    ts.tolist()))
