"""`dciot edge ...`: run the edge agent of one gateway."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import typer
from rich.console import Console

from dciot.cli.logsetup import configure_logging
from device_profiles.schema import ProfileError
from edge_agent.app import run_edge
from edge_agent.config import load_gateway_config
from edge_agent.errors import ConfigError

app = typer.Typer(help="Run and inspect the edge agent of a gateway.", no_args_is_help=True)
err_console = Console(stderr=True)


async def _run_until_signalled(config_path: Path) -> None:
    config, profiles = load_gateway_config(config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_edge(config, profiles, stop)


@app.command("run")
def run(config: Path = typer.Argument(..., exists=True, dir_okay=False, help="gateway YAML"),
        log_level: str = typer.Option("info", help="debug, info, warning, error")) -> None:
    """Poll the gateway's devices and publish their readings until Ctrl-C / SIGTERM."""
    configure_logging(log_level)
    try:
        asyncio.run(_run_until_signalled(config))
    except (ConfigError, ProfileError) as err:
        err_console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
