"""Run the simulators: Modbus TCP servers, the field-protocol simulators, the control API and
the physics loop, until `stop`.

Start-up order makes "the control port accepts TCP connections" a sufficient readiness check:
every unit's registers are filled before any Modbus server listens; then the Modbus RTU and
CJ/T 188 buses open their pseudo-terminals and link them at their configured paths; then the
UITDs and LoRa gateways start (they keep trying until the edge listener they report to is up);
the control API listens last. If a port cannot be bound or a link cannot be made, ListenError
is raised and whatever had started is stopped again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from device_profiles.schema import Cjt188Protocol, ProfileSet, load_profiles
from edge_agent.protocols.cjt188.metering import ValveState
from edge_agent.protocols.modbus.bus_budget import SerialLine
from firmware_sims.cjt188_meter import Cjt188MeterBus, SimMeter
from firmware_sims.clock import DISTRICT_TZ, SimClock
from firmware_sims.config import Cjt188BusConfig, RtuBusConfig, SimConfig
from firmware_sims.control import ControlServer
from firmware_sims.errors import ListenError
from firmware_sims.modbus_server import ModbusSimServer, SimUnit
from firmware_sims.models import build_model, model_or_fixed
from firmware_sims.reporters import LorawanReporter, UitdReporter, build_lorawan, build_uitd
from firmware_sims.rtu_bus import RtuBusSim
from firmware_sims.simulation import SimulatedDevice, Simulation

log = logging.getLogger(__name__)

STEP_INTERVAL_S = 0.2
"""Real seconds between physics steps."""


@dataclass
class Simulators:
    """Everything a config describes, built but not started."""

    simulation: Simulation
    servers: list[ModbusSimServer]
    rtu_buses: list[tuple[RtuBusConfig, RtuBusSim]]
    meter_buses: list[tuple[Cjt188BusConfig, Cjt188MeterBus]]
    reporters: list[UitdReporter | LorawanReporter]


def build_simulation(config: SimConfig, profiles: ProfileSet | None = None) -> Simulators:
    """The devices, their simulation, one (not yet listening) server per configured port, the
    buses (pty not yet open) and the reporters of the pushing devices (not yet running)."""
    profiles = profiles or load_profiles()
    start = config.start_time or datetime.now(DISTRICT_TZ)
    servers: list[ModbusSimServer] = []
    devices: list[SimulatedDevice] = []
    for server in config.servers:
        units = {}
        for u in server.units:
            model = build_model(profiles.get(u.profile), start, seed=u.seed,
                                initial=u.initial, physics=config.physics)
            units[u.unit] = SimUnit(server.port, u.unit, model)
        servers.append(ModbusSimServer(server.host, server.port, units))
        devices += units.values()
    rtu_buses = [(b, _rtu_bus(b, profiles, start, config.physics)) for b in config.rtu_buses]
    for _config, bus in rtu_buses:
        devices += bus.units.values()
    reporters: list[UitdReporter | LorawanReporter] = []
    for uitd in config.uitds:
        reporter, pushed = build_uitd(uitd, profiles, start, config.physics)
        reporters.append(reporter)
        devices += pushed
    for network in config.lorawan:
        lora, pushed = build_lorawan(network, profiles, start, config.physics)
        reporters.append(lora)
        devices += pushed
    simulation = Simulation(SimClock(start, config.time_scale), devices)
    return Simulators(simulation, servers, rtu_buses,
                      [(b, _meter_bus(b, profiles)) for b in config.cjt188_buses], reporters)


def _rtu_bus(config: RtuBusConfig, profiles: ProfileSet, start: datetime,
             physics: bool) -> RtuBusSim:
    models = {u.unit: model_or_fixed(profiles.get(u.profile), start, seed=u.seed,
                                     initial=u.initial, physics=physics)
              for u in config.units}
    line = SerialLine(config.baudrate, config.parity, config.stopbits)
    return RtuBusSim(models, line, turnaround_s=config.turnaround_s, name=config.name)


def _meter_bus(config: Cjt188BusConfig, profiles: ProfileSet) -> Cjt188MeterBus:
    meters = []
    for m in config.meters:
        protocol = profiles.get(m.profile).protocol
        assert isinstance(protocol, Cjt188Protocol)
        meters.append(SimMeter(
            m.address, meter_type=protocol.meter_type,
            cumulative_m3=Decimal(str(m.cumulative_m3)),
            flow_m3_per_h=Decimal(str(m.flow_m3_per_h)), battery_low=m.battery_low,
            valve=ValveState.OPEN if m.valve_open else ValveState.CLOSED))
    return Cjt188MeterBus(meters, reply_delay_s=config.reply_delay_s)


def describe(server: ModbusSimServer) -> str:
    """One line saying what a server hosts, e.g. for the CLI."""
    profiles = sorted({u.profile.id for u in server.units.values()})
    ids = ", ".join(str(i) for i in sorted(server.units))
    return (f"Modbus TCP {server.host}:{server.port} listening: units {ids} "
            f"({', '.join(profiles)})")


def link_tty(link: Path, tty: str) -> None:
    """Make `link` a symlink to `tty`, replacing a symlink left over; ListenError if the path
    is something else or cannot be made."""
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        os.symlink(tty, link)
    except OSError as err:
        raise ListenError(f"cannot link {link} to {tty}: {err}") from err


def unlink_tty(link: Path, tty: str) -> None:
    """Remove `link` if it still points at `tty`."""
    with contextlib.suppress(OSError):
        if link.is_symlink() and os.readlink(link) == tty:
            link.unlink()


async def run_simulators(config: SimConfig, stop: asyncio.Event, *,
                         profiles: ProfileSet | None = None,
                         on_listening: Callable[[str], None] | None = None) -> None:
    """Serve every configured device and the control API until `stop` is set, then close all.

    `on_listening` is called with one line per server, bus and reporter once it runs (Modbus
    TCP, buses, UITDs and LoRa gateways, then control).
    """
    sims = build_simulation(config, profiles)
    simulation = sims.simulation
    simulation.publish_all()
    control = ControlServer(config.control.host, config.control.port, simulation)
    announce = on_listening or (lambda _line: None)
    started: list[ModbusSimServer] = []
    opened: list[tuple[Path, str, RtuBusSim | Cjt188MeterBus]] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for server in sims.servers:
            await server.start()
            started.append(server)
            announce(describe(server))
        for bus_config, bus in [*sims.rtu_buses, *sims.meter_buses]:
            await bus.start()
            opened.append((bus_config.link, bus.port, bus))
            link_tty(bus_config.link, bus.port)
            announce(_describe_bus(bus_config, bus))
        for reporter in sims.reporters:
            task = asyncio.create_task(reporter.run(), name=reporter.describe())
            task.add_done_callback(_report_crash)
            tasks.append(task)
            announce(reporter.describe())
        await control.start()
        announce(f"control API http://{control.host}:{control.port} listening "
                 f"(GET /state, POST /fault)")
        while not stop.is_set():
            await simulation.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STEP_INTERVAL_S)
    finally:
        await control.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link, tty, bus in opened:
            unlink_tty(link, tty)
            await bus.stop()
        for server in started:
            await server.stop()


def _report_crash(task: asyncio.Task[None]) -> None:
    """A reporter runs until cancelled: anything else is a bug worth a loud line."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())


def _describe_bus(config: RtuBusConfig | Cjt188BusConfig, bus: RtuBusSim | Cjt188MeterBus
                  ) -> str:
    if isinstance(bus, RtuBusSim):
        profiles = sorted({u.profile.id for u in bus.units.values()})
        return (f"Modbus RTU bus {config.name} on {bus.port} ({config.link}) at "
                f"{bus.line.describe()}: units {', '.join(str(u) for u in sorted(bus.units))} "
                f"({', '.join(profiles)})")
    return (f"CJ/T 188 bus {config.name} on {bus.port} ({config.link}): "
            f"{len(bus.meters)} meters")
