"""Every simulated unit, the clock that drives them, and fault injection by request.

Units are named "<port>:<unit>" (the Modbus endpoint and unit id a client would use). Fault
requests are plain mappings (the control API's JSON bodies):

    {"port": 15020, "unit": 3, "action": "force", "point": "sump_level", "value": 4.9}

    action       needs          effect
    force        point, value   report `value` for the point until released
    release      point          stop forcing the point
    release_all  -              stop forcing every point of the device
    set_state    point, value   change a physical quantity (e.g. sump_level); physics goes on
    mute         -              the unit stops answering (clients time out)
    unmute       -              the unit answers again
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from firmware_sims.clock import SimClock
from firmware_sims.errors import FaultError
from firmware_sims.modbus_server import SimUnit

ACTIONS: Mapping[str, tuple[str, ...]] = {
    "force": ("point", "value"), "release": ("point",), "release_all": (),
    "set_state": ("point", "value"), "mute": (), "unmute": (),
}
_FIELDS = frozenset({"port", "unit", "action", "point", "value"})


class Simulation:
    """The simulated units and their clock; `step()` advances physics and registers."""

    def __init__(self, clock: SimClock, units: Sequence[SimUnit]) -> None:
        self.clock = clock
        self.units = {u.key: u for u in units}
        self.time: datetime = clock.start

    def publish_all(self) -> None:
        """Write every unit's current values into its registers."""
        for unit in self.units.values():
            unit.publish()

    async def step(self) -> None:
        """Advance every model to the clock's now and publish it, yielding between units."""
        now = self.clock.now()
        dt_s = (now - self.time).total_seconds()
        self.time = now
        for unit in self.units.values():
            unit.model.step(dt_s, now)
            unit.publish()
            await asyncio.sleep(0)

    def device_state(self, unit: SimUnit) -> dict[str, Any]:
        return {"profile": unit.profile.id, "muted": unit.muted,
                "values": unit.model.values(), "forced": unit.model.forced}

    def state(self) -> dict[str, Any]:
        """{"time": ISO simulated time of the values, "devices": {"<port>:<unit>": {...}}}."""
        return {"time": self.time.isoformat(),
                "devices": {key: self.device_state(u) for key, u in self.units.items()}}

    def apply(self, request: Mapping[str, object]) -> dict[str, Any]:
        """Apply one fault request; return the device's new state. FaultError if invalid."""
        unknown = sorted(set(request) - _FIELDS)
        if unknown:
            raise FaultError(f"unknown field(s) {', '.join(unknown)}; allowed: "
                             f"{', '.join(sorted(_FIELDS))}")
        unit = self._unit(request.get("port"), request.get("unit"))
        action = request.get("action")
        if not isinstance(action, str) or action not in ACTIONS:
            raise FaultError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
        missing = [f for f in ACTIONS[action] if f not in request]
        if missing:
            raise FaultError(f"action {action} needs {', '.join(missing)}")
        point = request.get("point")
        if "point" in ACTIONS[action] and not isinstance(point, str):
            raise FaultError(f"point must be a string, not {point!r}")
        try:
            self._dispatch(unit, action, str(point), request.get("value"))
        except KeyError as err:
            raise FaultError(str(err.args[0])) from err
        except ValueError as err:
            raise FaultError(str(err)) from err
        unit.publish()
        return {"time": self.time.isoformat(), "device": unit.key, **self.device_state(unit)}

    def _unit(self, port: object, unit_id: object) -> SimUnit:
        for name, value in (("port", port), ("unit", unit_id)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise FaultError(f"{name} must be an integer, not {value!r}")
        key = f"{port}:{unit_id}"
        try:
            return self.units[key]
        except KeyError:
            raise FaultError(f"no simulated device {key}; known: "
                             f"{', '.join(self.units)}") from None

    @staticmethod
    def _dispatch(unit: SimUnit, action: str, point: str, value: object) -> None:
        model = unit.model
        if action == "force":
            model.force(point, value)
        elif action == "release":
            model.release(point)
        elif action == "release_all":
            model.release_all()
        elif action == "set_state":
            model.set_state(point, value)
        else:
            unit.muted = action == "mute"
