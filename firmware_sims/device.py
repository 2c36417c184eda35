"""DeviceModel: what every simulated device shares, whatever its physics.

A model keeps three layers of values, by point name, and reports the first that is set:

    forced     `force(point, value)` until `release(point)` / `release_all()` (fault injection)
    outputs    what the physics computed at the last `step()`, or the value a Modbus client
               wrote to a read_write point (the model also takes that write as its new setting,
               `commanded(name)`, until the client writes again)
    default    `initial` from the config, else False / 0

`state` holds the physical quantities the physics integrates (water level, energy, ...);
`set_state(name, value)` changes one, and the physics continues from there. Points the profile
does not have are computed but never reported; profile points the model does not know report
their initial value. Reported values are exactly what the registers carry (`readback`), so a
client decodes them equal to `values()`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

import numpy as np

from device_profiles.schema import Access, DataType, Domain, Point, Profile
from edge_agent.errors import FrameError
from edge_agent.protocols.modbus.codec import decode_point, encode_point, shortest_float32
from edge_agent.scaling import to_engineering, to_raw

Value = bool | int | float
_WIDTHS = {DataType.int8: "b", DataType.uint8: "B", DataType.int16: "h", DataType.uint16: "H",
           DataType.int32: "i", DataType.uint32: "I", DataType.float32: "f"}
"""struct formats of the numeric types, to check that a value fits a non-register point."""


def readback(point: Point, value: Value) -> Value:
    """The engineering value a client decodes once `value` is in `point`'s registers.

    Same result as to_raw -> encode_point -> decode_point -> to_engineering, without building
    the registers; the value must fit them (`coerce_value` checks that).
    """
    raw = to_raw(point, value)
    if point.type == DataType.float32:
        raw = shortest_float32(struct.unpack(">f", struct.pack(">f", raw))[0])
    return to_engineering(point, raw)


def coerce_value(point: Point, value: object) -> Value:
    """Check that `value` suits `point` and return it as the registers (or, for a decoded
    field or payload point, its type) will carry it.

    Raises ValueError naming the point and the reason.
    """
    if point.type == DataType.bool:
        if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
            return bool(value)
        raise ValueError(f"{point.name} is a bool point; {value!r} is not true/false")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{point.name} takes a number, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{point.name} takes a finite number, not {value!r}")
    raw = to_raw(point, value)
    if point.register_type is None:  # a decoded field or a payload byte range, no registers
        try:
            struct.pack(">" + _WIDTHS[point.type], raw)
        except struct.error as err:
            raise ValueError(f"{value!r} does not fit {point.name} ({point.type}, scale "
                             f"{point.scale:g}): {err}") from err
        return readback(point, value)
    try:
        words = encode_point(point, raw)
    except FrameError as err:
        raise ValueError(f"{value!r} does not fit {point.name} ({point.type}, scale "
                         f"{point.scale:g}): {err}") from err
    return to_engineering(point, decode_point(point, point.address, words))


class DeviceModel:
    """Base of every device model; subclasses set `domain`, call `_begin` and implement `_step`."""

    domain: ClassVar[Domain]
    state_limits: ClassVar[Mapping[str, tuple[float, float]]] = {}

    def __init__(self, profile: Profile, start: datetime, *, seed: int = 0,
                 initial: Mapping[str, Value] | None = None, physics: bool = True) -> None:
        self.profile = profile
        self.physics = physics
        self.rng = np.random.default_rng(seed)
        self.state: dict[str, Value] = {}
        self.now = start
        self._points = {p.name: p for p in profile.points}
        self._initial = {name: coerce_value(self.point(name), v)
                         for name, v in (initial or {}).items()}
        self._outputs: dict[str, Value] = {}
        self._forced: dict[str, Value] = {}
        self._commands: dict[str, Value] = {}
        self._reported: dict[str, Value] | None = None

    # -- for subclasses -------------------------------------------------------------------

    def _begin(self, state: dict[str, Value]) -> None:
        """Set the physical state (initial values win over the model's defaults), compute the
        first outputs, then report every initial value as given."""
        self.state = {name: self._initial.get(name, v) for name, v in state.items()}
        self._outputs = self._step(0.0, self.now)
        self._outputs.update(self._initial)
        self._reported = None

    def _step(self, dt_s: float, now: datetime) -> dict[str, Value]:
        """Advance the physics by dt_s simulated seconds; return outputs by point name."""
        raise NotImplementedError

    def commanded(self, name: str) -> Value | None:
        """The value a Modbus client last wrote to read_write point `name`, if any."""
        return self._commands.get(name)

    # -- public API -----------------------------------------------------------------------

    def point(self, name: str) -> Point:
        """The profile's point `name`; KeyError naming the known points if there is none."""
        try:
            return self._points[name]
        except KeyError:
            raise KeyError(f"profile {self.profile.id} has no point {name!r}; known: "
                           f"{', '.join(self._points)}") from None

    def step(self, dt_s: float, now_sim: datetime) -> None:
        """Advance to `now_sim`, dt_s simulated seconds after the last step (no-op without
        physics; a negative dt is ignored)."""
        if dt_s < 0:
            return
        self.now = now_sim
        if self.physics:
            self._outputs = self._step(dt_s, now_sim)
            self._reported = None

    def values(self) -> dict[str, Value]:
        """Engineering value of every point of the profile, as a client would decode it."""
        if self._reported is None:
            result: dict[str, Value] = {}
            for p in self.profile.points:
                zero: Value = False if p.type == DataType.bool else 0
                default = self._initial.get(p.name, zero)
                value = self._forced.get(p.name, self._outputs.get(p.name, default))
                result[p.name] = readback(p, value)
            self._reported = result
        return dict(self._reported)

    def force(self, point: str, value: object) -> None:
        """Report `value` for `point` until released (the physics carries on underneath)."""
        self._forced[point] = coerce_value(self.point(point), value)
        self._reported = None

    def release(self, point: str) -> None:
        """Stop forcing `point` (no error when it was not forced)."""
        self.point(point)
        self._forced.pop(point, None)
        self._reported = None

    def release_all(self) -> None:
        self._forced.clear()
        self._reported = None

    @property
    def forced(self) -> dict[str, Value]:
        return dict(self._forced)

    def write(self, point: str, value: object) -> None:
        """A Modbus client wrote `value` to read_write `point`: it becomes the setting."""
        p = self.point(point)
        if p.access != Access.read_write:
            raise ValueError(f"point {point} is read-only")
        coerced = coerce_value(p, value)
        self._commands[point] = coerced
        self._outputs[point] = coerced
        self._reported = None

    def set_state(self, name: str, value: object) -> None:
        """Change a physical quantity; the physics continues from the new value."""
        if name not in self.state:
            raise KeyError(f"{type(self).__name__} has no state {name!r}; known: "
                           f"{', '.join(sorted(self.state))}")
        current = self.state[name]
        if name in self._points:
            new = coerce_value(self._points[name], value)
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                raise ValueError(f"state {name} takes true/false, not {value!r}")
            new = value
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"state {name} takes a number, not {value!r}")
        else:
            new = float(value)
        low, high = self.state_limits.get(name, (-math.inf, math.inf))
        if not isinstance(new, bool) and not low <= new <= high:
            raise ValueError(f"state {name} must be within {low:g}..{high:g}, not {new!r}")
        self.state[name] = new
        if self.physics:
            self._outputs = self._step(0.0, self.now)
        elif name in self._points:
            self._outputs[name] = new
        self._reported = None
