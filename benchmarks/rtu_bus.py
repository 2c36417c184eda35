"""RS-485 bus throughput: poll a simulated Modbus RTU bus flat out, compare with the wire limit.

The bus simulator (firmware_sims/rtu_bus.py) runs on its own event loop in a thread and holds a
pty master; the edge agent's transport and drivers open the slave as a serial port. A pty has no
baud rate, so the simulator clocks its answers out at the configured rate and answers after a
device turnaround. Every unit is polled back to back (one poll task per unit, as the scheduler
runs them, taking turns through the bus lock), so the bus is never idle by intent.

The theoretical maximum for the frames polled is 1 / (mean poll time on the wire): request and
answer bytes x char time + turnaround + 3.5 characters of silence per request
(edge_agent/protocols/modbus/bus_budget.py). Prints one JSON object.

    .venv/bin/python benchmarks/rtu_bus.py --baud 9600 --units 10 --polls 300

Bounded: stops after --polls polls or --timeout seconds, whichever is first. The line is 8N2,
11 bits per character like the Modbus default 8E1 (Linux refuses parity settings on a pty).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device_profiles.schema import load_profiles
from edge_agent.errors import FrameError, TransportError
from edge_agent.protocols.modbus.bus_budget import SerialLine, poll_s
from edge_agent.protocols.modbus.driver import ModbusDriver
from edge_agent.protocols.modbus.rtu_transport import ModbusRtuTransport
from firmware_sims.rtu_bus import BusSimThread, RtuBusSim, model_for

PROFILES = ("dc-elecfire-v1", "generic-pt485-hydrant", "crowcon-xgardiq")


async def poll_bus(port: str, line: SerialLine, units: dict[int, str], polls: int,
                   timeout_s: float) -> dict[str, object]:
    profiles = load_profiles()
    transport = ModbusRtuTransport(port, line)
    drivers = {}
    for unit, profile_id in units.items():
        transport.attach(unit, f"unit-{unit}", 0.5)
        drivers[unit] = ModbusDriver(profiles.get(profile_id), transport, unit)
    done: list[int] = []
    errors: list[str] = []
    deadline = time.monotonic() + timeout_s

    async def run(unit: int) -> None:
        while len(done) < polls and time.monotonic() < deadline:
            try:
                await drivers[unit].read()
                done.append(unit)
            except (TransportError, FrameError) as err:
                errors.append(str(err))

    await drivers[min(units)].read()  # open the port before the clock starts
    started = time.monotonic()
    await asyncio.gather(*(run(u) for u in units))
    elapsed = time.monotonic() - started
    await transport.close()
    wire_s = sum(poll_s(line, drivers[u].requests) for u in done)
    return {"polls": len(done), "seconds": round(elapsed, 3), "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "achieved_polls_per_s": round(len(done) / elapsed, 2),
            "theoretical_polls_per_s": round(len(done) / wire_s, 2),
            "ratio": round(wire_s / elapsed, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--units", type=int, default=10, help="unit ids on the bus (fire "
                        "profiles in turn)")
    parser.add_argument("--polls", type=int, default=300)
    parser.add_argument("--turnaround-ms", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds at most")
    args = parser.parse_args()
    line = SerialLine(args.baud, "N", 2)
    units = {u: PROFILES[(u - 1) % len(PROFILES)] for u in range(1, args.units + 1)}
    profiles = load_profiles()
    sim = RtuBusSim({u: model_for(profiles.get(p)) for u, p in units.items()}, line,
                    turnaround_s=args.turnaround_ms / 1000)
    worker = BusSimThread(sim)
    port = worker.start()
    try:
        result = asyncio.run(poll_bus(port, line, units, args.polls, args.timeout))
    finally:
        worker.stop()
    print(json.dumps({
        "line": line.describe(), "bits_per_char": line.bits_per_char, "units": args.units,
        "turnaround_ms": args.turnaround_ms, **result,
        "silence_violations": sim.stats.silence_violations,
        "min_gap_ms": round(sim.stats.min_gap_s * 1000, 3),
        "silence_ms": round(line.silence_s * 1000, 3)}, indent=2))


if __name__ == "__main__":
    main()
