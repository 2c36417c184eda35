"""`dciot dashboards ...`: build the Grafana dashboards into provisioning files, lint them, push
them to a Grafana, verify their queries on an InfluxDB."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dashboards import catalog
from dashboards.catalog import BuiltDashboard
from dashboards.lint import Problem, lint_all, lint_deterministic
from dashboards.provisioning import DatasourceSettings, WrittenFile, write_build
from dashboards.verify import InfluxEndpoint, Selection, parse_time, verify

app = typer.Typer(help="Grafana dashboards: build, lint, push, verify.", no_args_is_help=True)
console = Console()


class LintFailed(Exception):
    """The dashboards have lint problems; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} lint problem(s)")
        self.problems = problems


def build_dashboards() -> list[BuiltDashboard]:
    """Build twice: the second build must be identical (stable uids, deterministic JSON)."""
    first = catalog.build_all()
    problems = lint_all(first) + lint_deterministic(first, catalog.build_all())
    if problems:
        raise LintFailed(problems)
    return first


def build_into(outdir: Path, dashboards: Sequence[BuiltDashboard],
               settings: DatasourceSettings, dashboards_path: str | None = None
               ) -> list[WrittenFile]:
    """Lint `dashboards`, then write them and the provisioning files; refuse on problems."""
    problems = lint_all(dashboards)
    if problems:
        raise LintFailed(problems)
    return write_build(outdir, dashboards, settings, dashboards_path=dashboards_path)


def _print_problems(problems: Sequence[Problem]) -> None:
    table = Table(title=f"Dashboard lint problems ({len(problems)})")
    for column in ("dashboard", "where", "problem", "code"):
        table.add_column(column)
    for p in problems:
        table.add_row(p.dashboard_uid, p.panel or "", p.message, p.code)
    console.print(table)


def _settings(influx_url: str, database: str, user: str | None, password_env: str | None,
              token_env: str | None) -> DatasourceSettings:
    try:
        return DatasourceSettings(url=influx_url, database=database, user=user,
                                  password_env=password_env, token_env=token_env)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _built_or_exit() -> list[BuiltDashboard]:
    try:
        return build_dashboards()
    except LintFailed as exc:
        _print_problems(exc.problems)
        console.print("[red]Dashboard lint failed; nothing was written[/red]")
        raise typer.Exit(1) from None


@app.command("build")
def build(outdir: Path = typer.Argument(..., help="output directory"),
          influx_url: str = typer.Option("http://127.0.0.1:8086", help="InfluxDB URL for Grafana"),
          database: str = typer.Option("dciot", help="InfluxDB database"),
          user: str | None = typer.Option(None, help="InfluxDB user"),
          password_env: str | None = typer.Option(
              None, help="environment variable with the InfluxDB password (Grafana reads it)"),
          token_env: str | None = typer.Option(
              None, help="environment variable with an InfluxDB token (2.x/3.x)"),
          grafana_path: str | None = typer.Option(
              None, help="where Grafana sees OUTDIR/dashboards (default: its absolute path)"),
          ) -> None:
    """Lint the dashboards, then write their JSON and Grafana's provisioning files."""
    settings = _settings(influx_url, database, user, password_env, token_env)
    dashboards = _built_or_exit()
    written = build_into(outdir, dashboards, settings, grafana_path)
    table = Table(title=f"Written to {outdir}")
    for column in ("kind", "uid", "file"):
        table.add_column(column)
    for f in written:
        table.add_row(f.kind, f.uid or "", str(f.path.relative_to(outdir)))
    console.print(table)
    count = sum(f.kind == "dashboard" for f in written)
    console.print(f"[green]{count} dashboard(s); Grafana provisioning directory: "
                  f"{outdir / 'provisioning'}[/green]")


@app.command("lint")
def lint() -> None:
    """Check every dashboard (ids, titles, units, data source, variables, links)."""
    dashboards = _built_or_exit()
    console.print(f"[green]{len(dashboards)} dashboard(s) passed lint[/green]")


@app.command("push")
def push_command(url: str = typer.Option(..., help="Grafana URL, e.g. http://127.0.0.1:3000"),
                 token_env: str = typer.Option("GRAFANA_TOKEN",
                                               help="environment variable with the Grafana token"),
                 influx_url: str = typer.Option("http://127.0.0.1:8086",
                                                help="InfluxDB URL for Grafana"),
                 database: str = typer.Option("dciot", help="InfluxDB database"),
                 influx_user: str | None = typer.Option(None, help="InfluxDB user"),
                 influx_password_env: str | None = typer.Option(
                     None, help="environment variable with the InfluxDB password"),
                 influx_token_env: str | None = typer.Option(
                     None, help="environment variable with an InfluxDB token (2.x/3.x)"),
                 update_secret: bool = typer.Option(
                     False, help="write the InfluxDB secret even if nothing else changed"),
                 ) -> None:
    """Create or update the data source, folders and dashboards in Grafana; unchanged objects
    are not written."""
    from dashboards.push import PushError, push  # grafana-client: only when pushing

    token = os.environ.get(token_env, "")
    if not token:
        console.print(f"[red]Environment variable {token_env} (Grafana token) is not set[/red]")
        raise typer.Exit(2)
    settings = _settings(influx_url, database, influx_user, influx_password_env,
                         influx_token_env)
    dashboards = _built_or_exit()
    try:
        changes = push(url, token, dashboards, settings, update_secret=update_secret)
    except PushError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    table = Table(title=f"Pushed to {url}")
    for column in ("kind", "uid", "title", "result"):
        table.add_column(column)
    style = {"created": "green", "updated": "yellow", "unchanged": "dim"}
    for c in changes:
        table.add_row(c.kind, c.uid, c.title, f"[{style[c.action]}]{c.action}[/]")
    console.print(table)


@app.command("verify")
def verify_command(influx_url: str = typer.Option(..., help="InfluxDB URL"),
                   database: str = typer.Option(..., help="InfluxDB database"),
                   time_from: str = typer.Option("now-1h", "--from", help="now-1h, or epoch ms"),
                   time_to: str = typer.Option("now", "--to", help="now, or epoch ms"),
                   selection: str = typer.Option("all", help="variables: all | first"),
                   ) -> None:
    """Run every dashboard query as Grafana would; list those failing or returning nothing."""
    if selection not in ("all", "first"):
        console.print("[red]--selection must be all or first[/red]")
        raise typer.Exit(2)
    try:
        start, end = parse_time(time_from), parse_time(time_to)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    dashboards = catalog.build_all()
    report = verify(dashboards, InfluxEndpoint(influx_url, database), start, end,
                    Selection(mode=selection))  # type: ignore[arg-type]
    if report.problems:
        table = Table(title=f"Query problems ({len(report.problems)} of {len(report.results)})")
        for column in ("dashboard", "panel", "refId", "problem", "query"):
            table.add_column(column)
        for r in report.problems:
            table.add_row(r.dashboard_uid, r.where, r.ref_id, r.problem or "", r.query)
        console.print(table)
        raise typer.Exit(1)
    console.print(f"[green]All {len(report.results)} queries returned data[/green]")
