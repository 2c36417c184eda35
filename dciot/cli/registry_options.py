"""Options and rendering shared by `dciot gateway` and `dciot device` (the registry CLIs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cloud_broker.registry.errors import InvalidEntry, RegistryError
from cloud_broker.registry.store import Registry
from device_profiles.schema import PROFILES_ROOT

console = Console()
err_console = Console(stderr=True)

REGISTRY = typer.Option(Path("registry.sqlite"), "--registry", envvar="DCIOT_REGISTRY",
                        help="registry SQLite file (env DCIOT_REGISTRY)")
PROFILES_DIR = typer.Option(PROFILES_ROOT, "--profiles-dir", file_okay=False,
                            help="device profiles the registry's entries refer to")
JSON = typer.Option(False, "--json", help="print JSON instead of a table")
STATUS_STYLE = {"active": "green", "revoked": "red", "decommissioned": "dim"}


@contextmanager
def opened(path: Path) -> Iterator[Registry]:
    """The open registry; a RegistryError becomes its message on stderr and exit code 1."""
    registry = Registry(path)
    try:
        registry.open()
        yield registry
    except InvalidEntry as err:
        err_console.print(f"[red]error:[/red] {err.args[0].split(':')[0]} is invalid:")
        for problem in err.problems:
            err_console.print(f"  - {problem}", markup=False, highlight=False)
        raise typer.Exit(1) from err
    except RegistryError as err:
        err_console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(1) from err
    finally:
        registry.close()


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def status_text(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, '')}]{status}[/]"


def print_record(title: str, record: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in record.items():
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
        table.add_row(key, status_text(text) if key == "status" else escape(text))
    console.print(table)
