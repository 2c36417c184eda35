"""`dciot pki ...`: a private CA for the broker's TLS listener (cloud_broker/security/pki.py).

Prints only certificate paths; private keys are written 0600 and never shown.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cloud_broker.security.pki import PkiError, init_ca, issue_certificate

app = typer.Typer(help="Certificates for the MQTT broker and gateways.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@app.command("init")
def init(directory: Path = typer.Argument(..., help="PKI directory (created, mode 0700)"),
         common_name: str = typer.Option("Dongchang IoT CA", "--cn", help="CA common name"),
         days: int = typer.Option(3650, help="CA validity in days")) -> None:
    """Create a CA (EC P-256): DIR/ca.crt and DIR/ca.key."""
    try:
        issued = init_ca(directory, common_name, days)
    except PkiError as err:
        err_console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    console.print(f"CA certificate: {issued.certfile}  (key written 0600 beside it)")


@app.command("issue")
def issue(directory: Path = typer.Argument(..., help="PKI directory made by `pki init`"),
          name: str = typer.Option(..., "--name", help="file stem; a client's CN (gateway id)"),
          server: bool = typer.Option(False, "--server", help="a broker (server) certificate"),
          host: list[str] = typer.Option(
              [], "--host", help="server SAN (IP or DNS name), repeatable; "
                                 "default 127.0.0.1 and localhost"),
          days: int = typer.Option(825, help="validity in days")) -> None:
    """Issue DIR/NAME.crt and DIR/NAME.key signed by the CA."""
    if host and not server:
        err_console.print("[red]--host applies to --server certificates only[/red]")
        raise typer.Exit(2)
    try:
        issued = issue_certificate(directory, name, server=server, hosts=host or None, days=days)
    except PkiError as err:
        err_console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    kind = "server" if server else "client"
    console.print(f"{kind} certificate: {issued.certfile}  (key written 0600 beside it)")
