"""`dciot cloud ...`: run the cloud services (ingest + rules)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer
from rich.console import Console

from cloud_broker.app import run_cloud
from cloud_broker.config import ConfigError, load_cloud_config
from dciot.cli.logsetup import configure_logging
from device_profiles.schema import ProfileError

app = typer.Typer(help="Run the cloud services.", no_args_is_help=True)
err_console = Console(stderr=True)


@app.command("run")
def run(config: Path = typer.Argument(..., exists=True, dir_okay=False, help="cloud YAML"),
        log_level: str = typer.Option("info", help="debug, info, warning, error")) -> None:
    """Ingest readings into InfluxDB and raise alarms until Ctrl-C / SIGTERM."""
    configure_logging(log_level)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        run_cloud(load_cloud_config(config), stop)
    except (ConfigError, ProfileError) as err:
        err_console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
