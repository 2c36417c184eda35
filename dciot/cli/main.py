"""The `dciot` command: one thin typer app per command group; each parses, calls, renders."""

from __future__ import annotations

import typer

from dciot.cli import (
    alarms,
    cloud,
    dashboards,
    demo,
    device,
    edge,
    events,
    gateway,
    pki,
    profiles,
    sim,
    status,
)

app = typer.Typer(help="Dongchang IoT telemetry stack.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(edge.app, name="edge")
app.add_typer(cloud.app, name="cloud")
app.add_typer(sim.app, name="sim")
app.add_typer(profiles.app, name="profiles")
app.add_typer(alarms.app, name="alarms")
app.add_typer(events.app, name="events")
app.add_typer(pki.app, name="pki")
app.add_typer(gateway.app, name="gateway")
app.add_typer(device.app, name="device")
app.add_typer(dashboards.app, name="dashboards")
app.command("demo")(demo.demo)
app.command("status")(status.status)

if __name__ == "__main__":
    app()
