"""`dciot gateway ...`: register field gateways, manage their broker credentials and write
their edge-agent config from the provisioning registry (cloud_broker/registry/)."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from cloud_broker.registry import provisioning
from cloud_broker.registry.provisioning import CredentialsHook, broker_files_hook
from cloud_broker.registry.store import Gateway, Registry
from cloud_broker.security.broker_files import reload_broker
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
from device_profiles.schema import load_profiles

app = typer.Typer(help="Field gateways and their broker credentials (provisioning registry).",
                  no_args_is_help=True)
BROKER_DIR = typer.Option(None, "--broker-dir", file_okay=False,
                          help="regenerate the broker's password/ACL files here after the "
                               "change (cloud_broker.security.broker_files)")
BROKER_PID_FILE = typer.Option(None, "--broker-pid-file", dir_okay=False,
                               help="mosquitto's pid file: send it SIGHUP after regenerating "
                                    "its files (with --broker-dir)")
SERVICE_ACCOUNTS = typer.Option(None, "--service-accounts", dir_okay=False,
                                help="service-accounts YAML written into the broker files "
                                     "with the gateways [default: BROKER_DIR/"
                                     "service_accounts.yaml]")


def _hook(broker_dir: Path | None, accounts: Path | None) -> CredentialsHook | None:
    """The broker-files hook if --broker-dir is given; checked before anything changes."""
    if broker_dir is None:
        return None
    accounts = accounts or broker_dir / "service_accounts.yaml"
    if not accounts.is_file():
        err_console.print(f"[red]error:[/red] no service-accounts file {accounts}: broker "
                          f"files without it would lock the ingest out", highlight=False)
        raise typer.Exit(2)
    return broker_files_hook(broker_dir, accounts)


def _regenerate(registry: Registry, hook: CredentialsHook | None,
                pid_file: Path | None) -> None:
    """Run the hook after the change is committed (and any password shown), then make the
    broker re-read its files (SIGHUP: connected clients stay, revoked logins are dropped)."""
    if hook is None:
        return
    hook(registry)
    if pid_file is None:
        console.print("broker password/ACL files regenerated; reload mosquitto (SIGHUP, e.g. "
                      "systemctl reload mosquitto) or pass --broker-pid-file")
        return
    try:
        reload_broker(int(pid_file.read_text().split()[0]))
    except (OSError, ValueError, IndexError) as err:
        err_console.print(f"[red]error:[/red] broker files regenerated but not reloaded "
                          f"({pid_file}: {err})", highlight=False)
        raise typer.Exit(1) from err
    console.print("broker password/ACL files regenerated and mosquitto reloaded")


def _show_password(gateway_id: str, password: str) -> None:
    """The only place a clear password appears: once, on stdout, never logged."""
    console.print(f"broker password for [bold]{escape(gateway_id)}[/] (shown once; give it to "
                  f"the gateway as {provisioning.PASSWORD_ENV}):", soft_wrap=True)
    typer.echo(password)


@app.command("add")
def add(gateway_id: str = typer.Argument(..., help="gateway id (= broker username)"),
        site: str = typer.Option(..., "--site", help="site name, e.g. 东昌路"),
        town: str = typer.Option(..., "--town", help="town/street (乡镇/街道)"),
        lat: float = typer.Option(..., "--lat"), lon: float = typer.Option(..., "--lon"),
        registry: Path = REGISTRY, broker_dir: Path | None = BROKER_DIR,
        service_accounts: Path | None = SERVICE_ACCOUNTS,
        broker_pid_file: Path | None = BROKER_PID_FILE) -> None:
    """Register a gateway and print its generated broker password once."""
    hook = _hook(broker_dir, service_accounts)
    with opened(registry) as reg:
        password = provisioning.add_gateway(
            reg, Gateway(id=gateway_id, site=site, town=town, lat=lat, lon=lon))
        console.print(f"gateway [bold]{escape(gateway_id)}[/] added")
        _show_password(gateway_id, password)
        _regenerate(reg, hook, broker_pid_file)


@app.command("list")
def list_gateways(registry: Path = REGISTRY, as_json: bool = JSON) -> None:
    """Every gateway with its device count."""
    with opened(registry) as reg:
        gateways = reg.list_gateways()
        counts = {g.id: len(reg.list_devices(gateway=g.id, status="active")) for g in gateways}
    if as_json:
        print_json([{**g.public(), "devices": counts[g.id]} for g in gateways])
        return
    table = Table(title=f"gateways in {registry}")
    for column in ("id", "site", "town", "lat, lon", "status", "password", "devices"):
        table.add_column(column)
    for g in gateways:
        table.add_row(escape(g.id), escape(g.site), escape(g.town), f"{g.lat:.5f}, {g.lon:.5f}",
                      status_text(g.status), "set" if g.password_hash else "-",
                      str(counts[g.id]))
    console.print(table)


@app.command("show")
def show(gateway_id: str, registry: Path = REGISTRY, as_json: bool = JSON) -> None:
    """One gateway and its devices (the password hash is never shown)."""
    with opened(registry) as reg:
        gateway = reg.get_gateway(gateway_id)
        devices = [d.id for d in reg.list_devices(gateway=gateway_id, status="active")]
    record = {**gateway.public(), "devices": devices}
    if as_json:
        print_json(record)
    else:
        print_record(f"gateway {gateway_id}", {**record, "devices": ", ".join(devices) or "-"})


@app.command("rotate-credentials")
def rotate_credentials(gateway_id: str, registry: Path = REGISTRY,
                       broker_dir: Path | None = BROKER_DIR,
                       service_accounts: Path | None = SERVICE_ACCOUNTS,
        broker_pid_file: Path | None = BROKER_PID_FILE) -> None:
    """Replace the gateway's broker password; print the new one once."""
    hook = _hook(broker_dir, service_accounts)
    with opened(registry) as reg:
        password = provisioning.rotate_credentials(reg, gateway_id)
        console.print(f"credentials of [bold]{escape(gateway_id)}[/] rotated; the old password "
                      f"works until the broker files are regenerated and reloaded")
        _show_password(gateway_id, password)
        _regenerate(reg, hook, broker_pid_file)


@app.command("revoke")
def revoke(gateway_id: str, registry: Path = REGISTRY,
           broker_dir: Path | None = BROKER_DIR,
           service_accounts: Path | None = SERVICE_ACCOUNTS,
        broker_pid_file: Path | None = BROKER_PID_FILE) -> None:
    """Revoke a gateway: status revoked, password hash cleared."""
    hook = _hook(broker_dir, service_accounts)
    with opened(registry) as reg:
        provisioning.revoke_gateway(reg, gateway_id)
        console.print(f"gateway [bold]{escape(gateway_id)}[/] revoked")
        _regenerate(reg, hook, broker_pid_file)


@app.command("config")
def config(gateway_id: str,
           out: Path | None = typer.Option(None, "--out", dir_okay=False,
                                           help="write here instead of stdout"),
           broker_host: str = typer.Option("127.0.0.1", "--broker-host"),
           broker_port: int = typer.Option(1883, "--broker-port", min=1, max=65535),
           registry: Path = REGISTRY, profiles_dir: Path = PROFILES_DIR) -> None:
    """The edge agent's YAML config for this gateway (`dciot edge run FILE`)."""
    with opened(registry) as reg:
        data = provisioning.gateway_config(reg, gateway_id, broker_host, broker_port)
    listeners = provisioning.default_listeners(data, load_profiles(profiles_dir))
    if listeners:
        data["listeners"] = listeners
    text = (f"# generated by `dciot gateway config {gateway_id}` from {registry}\n"
            f"# the broker password is read from ${provisioning.PASSWORD_ENV}\n"
            + yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    for entry in listeners:
        err_console.print(f"note: a {entry['kind']} listener on {entry['host']}:{entry['port']} "
                          f"was added for the pushed devices: check the port", highlight=False)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {escape(str(out))}")
