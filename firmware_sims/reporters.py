"""Devices that push their readings, run from the simulator config: GB/T 26875 UITDs reporting
their components to a monitoring centre over TCP, and LoRa gateways forwarding their end
devices' uplinks over UDP. Both are clients of an edge agent's listener and keep trying until
it is up (the UITD reconnects; the gateways send PULL_DATA until answered).

Each component or end device is a `PushedDevice`: a device model (firmware_sims.models, fixed
values unless its domain has physics) that the control API faults like any Modbus unit. Its
reporter sends its values every `interval_s` and at once when a step or a fault changes them;
a muted device sends nothing.

    UITD component   state word from the profile's state-bit points (normal operation unless a
                     `normal` point says otherwise); one analog value per analog-typed point
                     (e.g. `analog_pressure_kpa` -> type 5); every component in one frame
    LoRaWAN device   one ABP uplink with its profile's payload, heard by every gateway
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from device_profiles.schema import Profile, ProfileSet
from edge_agent.protocols.gbt26875.codec import ANALOG_FIELDS, COMPONENT_BITS
from edge_agent.scaling import to_raw
from firmware_sims.config import LorawanConfig, UitdConfig
from firmware_sims.device import DeviceModel, Value
from firmware_sims.gbt26875_uitd import NORMAL, SimulatedUitd, UitdComponent
from firmware_sims.lorawan_gateway import PLAUSIBLE_VALUES, LorawanSim, SimEndDevice
from firmware_sims.models import model_or_fixed

log = logging.getLogger(__name__)

CONNECT_WAIT_S = 5.0
"""How long the gateways wait for a PULL_ACK before saying they are still waiting."""
_ANALOG_TYPES = {field: analog_type for analog_type, field in ANALOG_FIELDS.items()}


class PushedDevice:
    """A device that sends its readings itself; `publish()` (after every physics step and
    fault) wakes its reporter when its values differ from those last sent."""

    def __init__(self, key: str, model: DeviceModel, wake: asyncio.Event) -> None:
        self.key = key
        self.model = model
        self.profile = model.profile
        self.muted = False
        self.changed = False
        self._wake = wake
        self._sent: dict[str, Value] | None = None

    def publish(self) -> None:
        if not self.changed and self.model.values() != self._sent:
            self.changed = True
            self._wake.set()

    def take(self) -> dict[str, Value]:
        """The values to send now, remembered as sent."""
        self._sent = self.model.values()
        self.changed = False
        return dict(self._sent)


def state_word(profile: Profile, values: Mapping[str, Value]) -> int:
    """The component state word (GB/T 26875.3 8.2.1.2) the profile's state-bit points say."""
    word = NORMAL
    for point in profile.points:
        if point.field in COMPONENT_BITS:
            bit = 1 << COMPONENT_BITS.index(point.field)
            word = word | bit if values[point.name] else word & ~bit
    return word


def analog_values(profile: Profile, values: Mapping[str, Value]) -> list[tuple[int, int]]:
    """(analog type, raw value) of every analog-typed point of the profile."""
    return [(_ANALOG_TYPES[p.field], int(to_raw(p, values[p.name])))
            for p in profile.points if p.field in _ANALOG_TYPES]


class UitdReporter:
    """One UITD: connects (retrying every `retry_s`), reports its components every
    `interval_s` and on change, and reconnects when the centre drops the connection."""

    def __init__(self, name: str, uitd: SimulatedUitd, devices: Mapping[int, PushedDevice],
                 wake: asyncio.Event, interval_s: float, retry_s: float) -> None:
        self.name = name
        self.uitd = uitd
        self.devices = devices
        self.wake = wake
        self.interval_s = interval_s
        self.retry_s = retry_s

    def describe(self) -> str:
        return (f"GB/T 26875 UITD {self.name} ({self.uitd.address:012X}) reporting to "
                f"{self.uitd.host}:{self.uitd.port}: {len(self.devices)} components")

    async def run(self) -> None:
        """Until cancelled."""
        connected = False
        while True:
            try:
                await self.uitd.start()
            except OSError:
                await asyncio.sleep(self.retry_s)
                continue
            if not connected:
                log.info("UITD %s connected to %s:%d", self.name, self.uitd.host, self.uitd.port)
            connected = True
            try:
                await self._report_while_connected()
            except OSError as err:
                log.info("UITD %s lost its connection: %s", self.name, err)
            finally:
                await self.uitd.stop()
            connected = False
            await asyncio.sleep(self.retry_s)

    async def _report_while_connected(self) -> None:
        while self.uitd.connected:
            self.wake.clear()
            await self._report()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.interval_s)

    async def _report(self) -> None:
        live = {address: d for address, d in self.devices.items() if not d.muted}
        if not live:
            await self.uitd.heartbeat()
            return
        analogs: list[tuple[int, int, int]] = []
        for address, device in live.items():
            values = device.take()
            self.uitd.components[address].state = state_word(device.profile, values)
            analogs += [(address, t, raw) for t, raw in analog_values(device.profile, values)]
        await self.uitd.report_states(*live)
        for address, analog_type, raw in analogs:
            await self.uitd.report_analog(address, analog_type, raw)


@dataclass
class _Uplinks:
    device: SimEndDevice
    pushed: PushedDevice
    interval_s: float
    due: float = 0.0


class LorawanReporter:
    """LoRa gateways and their end devices: every device uplinks every `interval_s` (spread
    over the first interval) and at once when its values change."""

    def __init__(self, name: str, sim: LorawanSim,
                 devices: Sequence[tuple[SimEndDevice, PushedDevice, float]],
                 wake: asyncio.Event) -> None:
        self.name = name
        self.sim = sim
        self.devices = [_Uplinks(d, p, interval) for d, p, interval in devices]
        self.wake = wake

    def describe(self) -> str:
        gateway = self.sim.gateways[0]
        return (f"LoRaWAN {self.name}: {len(self.sim.gateways)} gateways sending to "
                f"{gateway.host}:{gateway.port} (UDP), {len(self.devices)} end devices")

    async def run(self) -> None:
        """Until cancelled."""
        await self.sim.start()
        try:
            while True:
                try:
                    await self.sim.wait_connected(CONNECT_WAIT_S)
                    break
                except TimeoutError:
                    continue
            log.info("LoRaWAN %s: the server answers every gateway", self.name)
            await self._uplink_forever()
        finally:
            await self.sim.stop()

    async def _uplink_forever(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for k, entry in enumerate(self.devices):
            entry.due = start + entry.interval_s * k / len(self.devices)
        while True:
            self.wake.clear()
            for entry in self.devices:
                now = loop.time()
                if not (entry.pushed.changed or now >= entry.due):
                    continue
                entry.due = now + entry.interval_s
                if not entry.pushed.muted:
                    entry.device.set(**entry.pushed.take())
                    await self.sim.uplink(entry.device)
            next_due = min(e.due for e in self.devices) - loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(next_due, 0.0))


def build_uitd(config: UitdConfig, profiles: ProfileSet, start: datetime, physics: bool
               ) -> tuple[UitdReporter, list[PushedDevice]]:
    """The reporter of one configured UITD and its components (devices "<name>:<address>")."""
    wake = asyncio.Event()
    components: list[UitdComponent] = []
    devices: dict[int, PushedDevice] = {}
    for c in config.components:
        profile = profiles.get(c.profile)
        normal = {p.name: True for p in profile.points if p.field == "normal"}
        model = model_or_fixed(profile, start, initial={**normal, **c.initial},
                               physics=physics)
        components.append(UitdComponent(c.component_address, c.component_type, c.system_type,
                                        c.system_address, c.description))
        devices[c.component_address] = PushedDevice(f"{config.name}:{c.component_address}",
                                                    model, wake)
    uitd = SimulatedUitd(config.host, config.port, config.address, components)
    return (UitdReporter(config.name, uitd, devices, wake, config.interval_s, config.retry_s),
            list(devices.values()))


def build_lorawan(config: LorawanConfig, profiles: ProfileSet, start: datetime, physics: bool
                  ) -> tuple[LorawanReporter, list[PushedDevice]]:
    """The reporter of one configured LoRa network (devices "<name>:<DevAddr>")."""
    wake = asyncio.Event()
    entries: list[tuple[SimEndDevice, PushedDevice, float]] = []
    for d in config.devices:
        profile = profiles.get(d.profile)
        initial = {**PLAUSIBLE_VALUES.get(profile.id, {}), **d.initial}
        model = model_or_fixed(profile, start, initial=initial, physics=physics)
        dev_addr = int(d.dev_addr, 16)
        device = SimEndDevice(dev_addr, bytes.fromhex(d.nwk_s_key), bytes.fromhex(d.app_s_key),
                              profile)
        pushed = PushedDevice(f"{config.name}:{dev_addr:08X}", model, wake)
        entries.append((device, pushed, d.interval_s or profile.poll_interval_s))
    sim = LorawanSim(config.host, config.port, list(config.gateways), config.keepalive_s)
    return LorawanReporter(config.name, sim, entries, wake), [p for _d, p, _i in entries]
