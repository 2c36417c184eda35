"""Run the simulators: Modbus servers, the control API and the physics loop, until `stop`.

Start-up order makes "the port accepts TCP connections" a sufficient readiness check: every
unit's registers are filled before any Modbus server listens, and the control API listens
last, once every Modbus server does. If a port cannot be bound, ListenError is raised and
whatever had started is stopped again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from device_profiles.schema import ProfileSet, load_profiles
from firmware_sims.clock import DISTRICT_TZ, SimClock
from firmware_sims.config import SimConfig
from firmware_sims.control import ControlServer
from firmware_sims.modbus_server import ModbusSimServer, SimUnit
from firmware_sims.models import build_model
from firmware_sims.simulation import Simulation

STEP_INTERVAL_S = 0.2
"""Real seconds between physics steps."""


def build_simulation(config: SimConfig, profiles: ProfileSet | None = None
                     ) -> tuple[Simulation, list[ModbusSimServer]]:
    """The units, their simulation and one (not yet listening) server per configured port."""
    profiles = profiles or load_profiles()
    start = config.start_time or datetime.now(DISTRICT_TZ)
    clock = SimClock(start, config.time_scale)
    servers: list[ModbusSimServer] = []
    all_units: list[SimUnit] = []
    for server in config.servers:
        units = {}
        for u in server.units:
            model = build_model(profiles.get(u.profile), start, seed=u.seed,
                                initial=u.initial, physics=config.physics)
            units[u.unit] = SimUnit(server.port, u.unit, model)
        servers.append(ModbusSimServer(server.host, server.port, units))
        all_units += units.values()
    return Simulation(clock, all_units), servers


def describe(server: ModbusSimServer) -> str:
    """One line saying what a server hosts, e.g. for the CLI."""
    profiles = sorted({u.profile.id for u in server.units.values()})
    ids = ", ".join(str(i) for i in sorted(server.units))
    return (f"Modbus TCP {server.host}:{server.port} listening: units {ids} "
            f"({', '.join(profiles)})")


async def run_simulators(config: SimConfig, stop: asyncio.Event, *,
                         profiles: ProfileSet | None = None,
                         on_listening: Callable[[str], None] | None = None) -> None:
    """Serve every configured unit and the control API until `stop` is set, then close all.

    `on_listening` is called with one line per server once it listens (Modbus, then control).
    """
    simulation, servers = build_simulation(config, profiles)
    simulation.publish_all()
    control = ControlServer(config.control.host, config.control.port, simulation)
    announce = on_listening or (lambda _line: None)
    started: list[ModbusSimServer] = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
            announce(describe(server))
        await control.start()
        announce(f"control API http://{control.host}:{control.port} listening "
                 f"(GET /state, POST /fault)")
        while not stop.is_set():
            await simulation.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STEP_INTERVAL_S)
    finally:
        await control.stop()
        for server in started:
            await server.stop()
