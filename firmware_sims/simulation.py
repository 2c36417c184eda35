"""Every simulated device, the clock that drives them, and fault injection by request.

Devices are named "<port>:<unit>" (the Modbus TCP endpoint and unit id a client would use) or,
for the field-protocol simulators, "<name>:<id>": "<bus>:<unit>" on a Modbus RTU bus,
"<uitd>:<component address>" behind a GB/T 26875 UITD, "<network>:<DevAddr>" for a LoRaWAN end
device. Fault requests are plain mappings (the control API's JSON bodies) naming the device by
`port` and `unit`, or by its name in `device`:

    {"port": 15020, "unit": 3, "action": "force", "point": "sump_level", "value": 4.9}
    {"device": "uitd-fire:131082", "action": "force", "point": "fire_alarm", "value": true}

    action       needs          effect
    force        point, value   report `value` for the point until released
    release      point          stop forcing the point
    release_all  -              stop forcing every point of the device
    set_state    point, value   change a physical quantity (e.g. sump_level); physics goes on
    mute         -              the unit stops answering (clients time out); a device that
                                pushes its readings (UITD component, LoRaWAN) stops sending
    unmute       -              the unit answers (sends) again

A device that pushes its readings sends at once when a fault changes what it reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from device_profiles.schema import Profile
from firmware_sims.clock import SimClock
from firmware_sims.device import DeviceModel
from firmware_sims.errors import FaultError

ACTIONS: Mapping[str, tuple[str, ...]] = {
    "force": ("point", "value"), "release": ("point",), "release_all": (),
    "set_state": ("point", "value"), "mute": (), "unmute": (),
}
_FIELDS = frozenset({"port", "unit", "device", "action", "point", "value"})


class SimulatedDevice(Protocol):
    """What the simulation drives and faults: a Modbus unit (firmware_sims.modbus_server.SimUnit)
    or a device that pushes its readings (firmware_sims.reporters.PushedDevice)."""

    model: DeviceModel
    profile: Profile
    muted: bool

    @property
    def key(self) -> str: ...

    def publish(self) -> None:
        """Make the model's current values what clients read (or what is sent next)."""


class Simulation:
    """The simulated devices and their clock; `step()` advances physics and registers."""

    def __init__(self, clock: SimClock, units: Sequence[SimulatedDevice]) -> None:
        self.clock = clock
        self.units = {u.key: u for u in units}
        self.time: datetime = clock.start

    def publish_all(self) -> None:
        """Write every unit's current values into its registers (or queue them to be sent)."""
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

    def device_state(self, unit: SimulatedDevice) -> dict[str, Any]:
        return {"profile": unit.profile.id, "muted": unit.muted,
                "values": unit.model.values(), "forced": unit.model.forced}

    def state(self) -> dict[str, Any]:
        """{"time": ISO simulated time of the values, "devices": {"<device key>": {...}}}."""
        return {"time": self.time.isoformat(),
                "devices": {key: self.device_state(u) for key, u in self.units.items()}}

    def apply(self, request: Mapping[str, object]) -> dict[str, Any]:
        """Apply one fault request; return the device's new state. FaultError if invalid."""
        unknown = sorted(set(request) - _FIELDS)
        if unknown:
            raise FaultError(f"unknown field(s) {', '.join(unknown)}; allowed: "
                             f"{', '.join(sorted(_FIELDS))}")
        unit = self._device(request)
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

    def _device(self, request: Mapping[str, object]) -> SimulatedDevice:
        if "device" in request:
            if "port" in request or "unit" in request:
                raise FaultError("give either device or port and unit, not both")
            key = request["device"]
            if not isinstance(key, str):
                raise FaultError(f"device must be a string, not {key!r}")
        else:
            port, unit_id = request.get("port"), request.get("unit")
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
    def _dispatch(unit: SimulatedDevice, action: str, point: str, value: object) -> None:
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
