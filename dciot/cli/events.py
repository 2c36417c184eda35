"""`dciot events ...`: run the city event centre, and list, show, move and assess its events
over its HTTP API (cloud_broker/events/api.py)."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from cloud_broker.config import ConfigError
from cloud_broker.events.catalogue import CatalogueError
from cloud_broker.events.service import StartupError, load_event_centre_config, run_event_centre
from dciot.cli.logsetup import configure_logging
from device_profiles.schema import ProfileError

app = typer.Typer(help="The city event-management centre (城市事件管理中心).",
                  no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)
DEFAULT_URL = "http://127.0.0.1:8600"
URL = typer.Option(DEFAULT_URL, "--url", help="event centre base URL")
JSON = typer.Option(False, "--json", help="print the raw JSON")
BY = typer.Option(..., "--by", help="who makes the transition")
NOTE = typer.Option(None, "--note", help="a note kept with the transition")
STATUS_STYLE = {"reported": "yellow", "accepted": "cyan", "dispatched": "blue",
                "handled": "green", "closed": "dim"}


def _call(method: str, url: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer; on an HTTP error or refusal print it and exit 1."""
    try:
        response = httpx.request(method, f"{url.rstrip('/')}{path}", timeout=10.0, **kwargs)
    except httpx.HTTPError as err:
        err_console.print(f"[red]error:[/red] cannot reach the event centre at {url}: {err}")
        raise typer.Exit(1) from err
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        err_console.print(f"[red]error ({response.status_code}):[/red] {detail}")
        raise typer.Exit(1)
    return response.json()


def _time(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else ""


def _status(event: dict[str, Any]) -> str:
    status = str(event["status"])
    overdue = " [bold red]超时[/]" if event.get("overdue") else ""
    return f"[{STATUS_STYLE.get(status, '')}]{status}[/]{overdue}"


@app.command("serve")
def serve(config: Path = typer.Argument(..., exists=True, dir_okay=False, help="centre YAML"),
          log_level: str = typer.Option("info", help="debug, info, warning, error")) -> None:
    """Run the event centre (HTTP API + overdue escalations) until Ctrl-C / SIGTERM."""
    configure_logging(log_level)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        run_event_centre(load_event_centre_config(config), stop)
    except (ConfigError, CatalogueError, ProfileError, StartupError) as err:
        err_console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err


@app.command("list")
def list_events(status: str | None = typer.Option(None, help="reported, accepted, dispatched, "
                                                  "handled, closed"),
                department: str | None = typer.Option(None, help="department id"),
                overdue: bool | None = typer.Option(None, "--overdue/--not-overdue",
                                                    help="only overdue (or not) events"),
                limit: int = typer.Option(100, help="newest this many"),
                url: str = URL, as_json: bool = JSON) -> None:
    """Events, newest first."""
    params = {k: v for k, v in (("status", status), ("department", department),
                                ("overdue", overdue), ("limit", limit)) if v is not None}
    events = _call("GET", url, "/api/v1/events", params=params)
    if as_json:
        console.print_json(json.dumps(events, ensure_ascii=False))
        return
    table = Table(title=f"Events ({len(events)})")
    for column in ("id", "status", "grade", "title", "department", "reported", "deadline",
                   "alarm cleared"):
        table.add_column(column)
    for e in events:
        table.add_row(str(e["id"]), _status(e), e["grade"], e["title_zh"],
                      e["department_zh"] or e["department"] or "", _time(e["reported_ts"]),
                      _time(e["deadline_ts"]), _time(e["alarm_cleared_ts"]))
    console.print(table)


def _render_event(event: dict[str, Any]) -> None:
    table = Table(title=f"Event {event['id']}: {event['title_zh']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [("status", _status(event)), ("source", event["source"]),
            ("category / grade", f"{event['category']} / {event['grade']}"),
            ("department", f"{event['department_zh'] or ''} ({event['department'] or '-'})"),
            ("reported", f"{_time(event['reported_ts'])} by {event['reported_by']}"),
            ("deadline", f"{_time(event['deadline_ts'])} "
                         f"({event['handling_time_limit_minutes']:g} min)"),
            ("closing standard", event["closing_standard"]),
            ("description", event["description_zh"]),
            ("device", " ".join(str(event[k]) for k in ("device_name", "device", "site")
                                if event.get(k))),
            ("alarm", f"{event['alarm_id'] or ''} {event['domain'] or ''}/{event['rule'] or ''}"
                      if event["alarm_id"] else ""),
            ("alarm cleared", _time(event["alarm_cleared_ts"]))]
    for name, value in rows:
        if value:
            table.add_row(name, str(value))
    console.print(table)
    steps = Table(title="Transitions")
    for column in ("at", "from", "to", "by", "department", "note"):
        steps.add_column(column)
    for t in event["transitions"]:
        steps.add_row(_time(t["at_ts"]), t["from_status"] or "", t["to_status"], t["by"],
                      t["department"] or "", t["note"])
    console.print(steps)


@app.command("show")
def show(event_id: int = typer.Argument(..., help="event id"), url: str = URL,
         as_json: bool = JSON) -> None:
    """One event with its transitions."""
    event = _call("GET", url, f"/api/v1/events/{event_id}")
    if as_json:
        console.print_json(json.dumps(event, ensure_ascii=False))
    else:
        _render_event(event)


def _body(by: str, note: str | None, department: str | None = None) -> dict[str, str]:
    return {"by": by, "note": note or "", **({"department": department} if department else {})}


def _transition(action: str, event_id: int, body: dict[str, str], url: str,
                as_json: bool) -> None:
    event = _call("POST", url, f"/api/v1/events/{event_id}/{action}", json=body)
    if as_json:
        console.print_json(json.dumps(event, ensure_ascii=False))
    else:
        console.print(f"event {event['id']} is now {_status(event)}")


@app.command("accept")
def accept(event_id: int = typer.Argument(...), by: str = BY, note: str | None = NOTE,
           url: str = URL, as_json: bool = JSON) -> None:
    """受理: accept a reported event."""
    _transition("accept", event_id, _body(by, note), url, as_json)


@app.command("dispatch")
def dispatch(event_id: int = typer.Argument(...), by: str = BY,
             department: str = typer.Option(..., "--department", help="department id"),
             note: str | None = NOTE, url: str = URL, as_json: bool = JSON) -> None:
    """分拨: dispatch an accepted event to a department."""
    _transition("dispatch", event_id, _body(by, note, department), url, as_json)


@app.command("handle")
def handle(event_id: int = typer.Argument(...), by: str = BY, note: str | None = NOTE,
           url: str = URL, as_json: bool = JSON) -> None:
    """处置: record that a dispatched event was handled."""
    _transition("handle", event_id, _body(by, note), url, as_json)


@app.command("close")
def close(event_id: int = typer.Argument(...), by: str = BY, note: str | None = NOTE,
          url: str = URL, as_json: bool = JSON) -> None:
    """结案: close a handled event."""
    _transition("close", event_id, _body(by, note), url, as_json)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@app.command("stats")
def stats(department: str | None = typer.Option(None, help="department id (default: each)"),
          from_: str | None = typer.Option(None, "--from", help="ISO date/time (UTC+8 if naive)"),
          to: str | None = typer.Option(None, "--to", help="exclusive; default now"),
          url: str = URL, as_json: bool = JSON) -> None:
    """Assessment metrics by department for events reported in [from, to)."""
    params = {k: v for k, v in (("department", department), ("from", from_), ("to", to))
              if v is not None}
    result = _call("GET", url, "/api/v1/stats", params=params)
    if as_json:
        console.print_json(json.dumps(result, ensure_ascii=False))
        return
    table = Table(title=f"Assessment {_time(result['from_ts']) or 'start'} → "
                        f"{_time(result['to_ts'])}")
    for column in ("department", "events", "discovery", "dispatch", "handling", "closure",
                   "avg handling (min)", "overdue"):
        table.add_column(column, justify="left" if column == "department" else "right")
    for row in result["departments"]:
        name = row["department_zh"] or row["department"] or "[bold]all[/]"
        average = row["average_handling_minutes"]
        table.add_row(name, str(row["events"]), _rate(row["discovery_rate"]),
                      _rate(row["dispatch_rate"]), _rate(row["handling_rate"]),
                      _rate(row["closure_rate"]), "—" if average is None else f"{average:.1f}",
                      str(row["overdue"]))
    console.print(table)
