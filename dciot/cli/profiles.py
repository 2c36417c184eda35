"""`dciot profiles ...`: validate and list device profiles."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dciot.profiles_doc import render_profiles_readme
from device_profiles.schema import PROFILES_ROOT, check_profiles

app = typer.Typer(help="Validate and list device profiles.", no_args_is_help=True)
console = Console()


@app.command("check")
def check(path: Path = typer.Argument(PROFILES_ROOT, exists=True,
                                      help="a profile file or a folder of them")) -> None:
    """Validate profiles; print every error with file and field, exit 1 if any."""
    good, errors = check_profiles(path)
    if good:
        table = Table(title="Valid profiles")
        for column in ("id", "domain", "protocol", "points", "alarms"):
            table.add_column(column)
        for p in good:
            table.add_row(p.id, str(p.domain), p.protocol.kind, str(len(p.points)),
                          str(len(p.alarms)))
        console.print(table)
    for err in errors:
        for problem in err.problems:
            console.print(f"[red]{err.path}[/red]: {problem}", soft_wrap=True)
    if errors:
        console.print(f"[red]{len(errors)} invalid profile file(s)[/red]")
        raise typer.Exit(1)
    if not good:
        console.print(f"[red]no profiles found under {path}[/red]")
        raise typer.Exit(1)


@app.command("doc")
def doc(output: Path = typer.Option(PROFILES_ROOT / "README.md", help="where to write")) -> None:
    """Regenerate the profile reference (device_profiles/README.md) from the schema."""
    output.write_text(render_profiles_readme(), encoding="utf-8")
    console.print(f"wrote {output}")
