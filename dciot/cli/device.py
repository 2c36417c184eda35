"""`dciot device ...`: device instances in the provisioning registry (cloud_broker/registry/):
add, list, show, update, move to another gateway, decommission, import a CSV file."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from cloud_broker.registry import provisioning
from cloud_broker.registry.importer import ImportFileError, import_devices
from cloud_broker.registry.store import Device
from dciot.cli.registry_options import (
    JSON,
    PROFILES_DIR,
    REGISTRY,
    console,
    err_console,
    opened,
    print_json,
    print_record,
    status_text,
)
from device_profiles.schema import ProfileError, ProfileSet, load_profiles

app = typer.Typer(help="Device instances (provisioning registry).", no_args_is_help=True)
HOST = typer.Option(None, "--host", help="modbus_tcp: device or gateway address")
PORT = typer.Option(None, "--port", min=1, max=65535, help="modbus_tcp: TCP port")
UNIT = typer.Option(None, "--unit", min=0, max=255, help="modbus_tcp: unit id")
PARAMS = typer.Option(None, "--params", help="other protocols: the plugin's params as JSON")
INSTALL_DATE = typer.Option(None, "--install-date", help="YYYY-MM-DD")


def _profiles(profiles_dir: Path) -> ProfileSet:
    try:
        return load_profiles(profiles_dir)
    except ProfileError as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from err


def _params(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise typer.BadParameter(f"not JSON: {err.msg}", param_hint="--params") from err
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--params")
    return value


@app.command("add")
def add(device_id: str, name: str | None = typer.Option(None, "--name"),
        profile: str = typer.Option(..., "--profile"),
        gateway: str = typer.Option(..., "--gateway"),
        lat: float = typer.Option(..., "--lat"), lon: float = typer.Option(..., "--lon"),
        install_date: str | None = INSTALL_DATE, host: str | None = HOST,
        port: int | None = PORT, unit: int | None = UNIT, params: str | None = PARAMS,
        registry: Path = REGISTRY, profiles_dir: Path = PROFILES_DIR) -> None:
    """Register a device instance on a gateway (every rule checked, every problem listed)."""
    device = Device(id=device_id, name=name or device_id, profile=profile, gateway=gateway,
                    lat=lat, lon=lon, host=host, port=port, unit=unit,
                    params=_params(params) or {}, install_date=install_date)
    profile_set = _profiles(profiles_dir)
    with opened(registry) as reg:
        provisioning.add_device(reg, profile_set, device)
    console.print(f"device [bold]{escape(device_id)}[/] added to {escape(gateway)}")


@app.command("list")
def list_devices(gateway: str | None = typer.Option(None, "--gateway", help="only this one's"),
                 all_: bool = typer.Option(False, "--all", help="include decommissioned"),
                 registry: Path = REGISTRY, as_json: bool = JSON) -> None:
    """Devices, active ones unless --all."""
    with opened(registry) as reg:
        devices = reg.list_devices(gateway=gateway, status=None if all_ else "active")
    if as_json:
        print_json([asdict(d) for d in devices])
        return
    table = Table(title=f"devices in {registry}")
    for column in ("id", "name", "profile", "gateway", "transport", "lat, lon", "installed",
                   "status"):
        table.add_column(column)
    for d in devices:
        table.add_row(escape(d.id), escape(d.name), d.profile, escape(d.gateway),
                      escape(json.dumps(d.transport(), ensure_ascii=False)),
                      f"{d.lat:.5f}, {d.lon:.5f}", d.install_date or "", status_text(d.status))
    console.print(table)


@app.command("show")
def show(device_id: str, registry: Path = REGISTRY, as_json: bool = JSON) -> None:
    """One device with its transport parameters."""
    with opened(registry) as reg:
        device = reg.get_device(device_id)
    if as_json:
        print_json(asdict(device))
    else:
        print_record(f"device {device_id}", asdict(device))


@app.command("update")
def update(device_id: str, name: str | None = typer.Option(None, "--name"),
           profile: str | None = typer.Option(None, "--profile"),
           lat: float | None = typer.Option(None, "--lat"),
           lon: float | None = typer.Option(None, "--lon"),
           install_date: str | None = INSTALL_DATE, host: str | None = HOST,
           port: int | None = PORT, unit: int | None = UNIT, params: str | None = PARAMS,
           registry: Path = REGISTRY, profiles_dir: Path = PROFILES_DIR) -> None:
    """Change fields of a device (the gateway: `device move`)."""
    given = {"name": name, "profile": profile, "lat": lat, "lon": lon,
             "install_date": install_date, "host": host, "port": port, "unit": unit,
             "params": _params(params)}
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        raise typer.BadParameter("nothing to change")
    profile_set = _profiles(profiles_dir)
    with opened(registry) as reg:
        provisioning.update_device(reg, profile_set, device_id, changes)
    console.print(f"device [bold]{escape(device_id)}[/] updated: {', '.join(sorted(changes))}")


@app.command("move")
def move(device_id: str, to: str = typer.Option(..., "--to", help="the new gateway"),
         registry: Path = REGISTRY, profiles_dir: Path = PROFILES_DIR) -> None:
    """Give a device to another gateway; the ingest refuses it from the old one."""
    profile_set = _profiles(profiles_dir)
    with opened(registry) as reg:
        provisioning.move_device(reg, profile_set, device_id, to)
    console.print(f"device [bold]{escape(device_id)}[/] moved to {escape(to)}")


@app.command("decommission")
def decommission(device_id: str, registry: Path = REGISTRY) -> None:
    """Take a device out of service; the ingest refuses its readings (unknown_device)."""
    with opened(registry) as reg:
        reg.decommission_device(device_id)
    console.print(f"device [bold]{escape(device_id)}[/] decommissioned")


@app.command("import")
def import_csv(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV file"),
               skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                                 help="import the good rows of a file with "
                                                      "bad ones"),
               registry: Path = REGISTRY, profiles_dir: Path = PROFILES_DIR) -> None:
    """Import devices from CSV: all rows or none (unless --skip-invalid); bad rows listed."""
    profile_set = _profiles(profiles_dir)
    with opened(registry) as reg, Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("checking rows", total=None)
        try:
            report = import_devices(reg, profile_set, file, skip_invalid, on_row=lambda done,
                                    total: progress.update(task, completed=done, total=total))
        except ImportFileError as err:
            err_console.print(f"[red]error:[/red] {err}", highlight=False)
            raise typer.Exit(2) from err
    for bad in report.bad:
        err_console.print(f"line {bad.line} ({bad.device_id or 'no id'}): {bad.reason}",
                          markup=False, highlight=False, soft_wrap=True)
    if report.bad and not skip_invalid:
        err_console.print(f"[red]{len(report.bad)} of {report.rows} rows are invalid; nothing "
                          f"imported[/] (fix them, or use --skip-invalid)")
        raise typer.Exit(1)
    skipped = f", {len(report.bad)} invalid rows skipped" if report.bad else ""
    console.print(f"imported {len(report.imported)} of {report.rows} devices{skipped}")
