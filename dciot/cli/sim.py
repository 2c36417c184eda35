"""`dciot sim ...`: run the device simulators, inject faults, show their state."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from dciot.cli.logsetup import configure_logging
from firmware_sims.config import SimConfig, load_sim_config
from firmware_sims.control import get_state, send_fault
from firmware_sims.errors import ControlError, ListenError, SimConfigError
from firmware_sims.runner import run_simulators
from firmware_sims.simulation import ACTIONS

app = typer.Typer(help="Run the device simulators, inject faults, show their state.",
                  no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

CONTROL_HELP = "control API URL, e.g. http://127.0.0.1:15099"


async def _run_until_signalled(config: SimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_simulators(config, stop, on_listening=lambda line: console.print(
        f"[green]●[/green] {line}", soft_wrap=True))


@app.command("run")
def run(config: Path = typer.Argument(..., exists=True, dir_okay=False, help="simulator YAML"),
        log_level: str = typer.Option("warning", help="debug, info, warning, error")) -> None:
    """Serve the configured simulated devices until Ctrl-C / SIGTERM."""
    configure_logging(log_level)
    try:
        sim_config = load_sim_config(config)
    except SimConfigError as err:
        for problem in err.problems:
            err_console.print(f"[red]{err.source}[/red]: {problem}", soft_wrap=True)
        raise typer.Exit(2) from err
    try:
        asyncio.run(_run_until_signalled(sim_config))
    except ListenError as err:
        err_console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from err
    console.print("simulators stopped")


def _parse_value(text: str) -> object:
    """JSON if it parses (4.9, true, 3), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _call_control(call: Any, *args: object, **kwargs: object) -> dict[str, Any]:
    try:
        result: dict[str, Any] = call(*args, **kwargs)
        return result
    except ControlError as err:
        err_console.print(f"[red]refused:[/red] {err}")
        raise typer.Exit(1) from err
    except (urllib.error.URLError, OSError) as err:
        err_console.print(f"[red]cannot reach the control API:[/red] {err}")
        raise typer.Exit(1) from err


@app.command("fault")
def fault(action: str = typer.Argument(..., help=f"one of: {', '.join(ACTIONS)}"),
          point: str | None = typer.Argument(None, help="point (or state) name"),
          value: str | None = typer.Argument(None, help="value: 4.9, true, 3, ..."),
          control: str = typer.Option(..., help=CONTROL_HELP),
          port: int | None = typer.Option(None, help="Modbus port of the device's server"),
          unit: int | None = typer.Option(None, help="unit id of the device"),
          device: str | None = typer.Option(None, help="the device's name instead of --port "
                                            "and --unit, e.g. uitd-fire:131082, "
                                            "lora-water:26011B01 (see `dciot sim state`)")
          ) -> None:
    """Inject or clear a fault, e.g. `force sump_level 4.9`, `mute`, `release sump_level`."""
    if (device is None) == (port is None or unit is None):
        err_console.print("[red]error:[/red] give --device, or --port and --unit")
        raise typer.Exit(2)
    target: dict[str, object] = {"device": device} if device else {"port": port, "unit": unit}
    fields: dict[str, object] = {**target, "action": action}
    if point is not None:
        fields["point"] = point
    if value is not None:
        fields["value"] = _parse_value(value)
    device = _call_control(send_fault, control, **fields)
    console.print(_devices_table(device["time"], {device["device"]: device}))


@app.command("state")
def state(control: str = typer.Option(..., help=CONTROL_HELP)) -> None:
    """Show every simulated device with its current values (forced ones marked *)."""
    result = _call_control(get_state, control)
    console.print(_devices_table(result["time"], result["devices"]))


def _devices_table(time: str, devices: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=f"simulated devices at {time}")
    for column in ("device", "profile", "muted", "values (* forced)"):
        table.add_column(column)
    for key, device in devices.items():
        forced = device.get("forced", {})
        shown = [f"{name}={_fmt(v)}{'*' if name in forced else ''}"
                 for name, v in device["values"].items()]
        muted = "[red]muted[/red]" if device["muted"] else "no"
        table.add_row(key, device["profile"], muted, "  ".join(shown))
    return table


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
