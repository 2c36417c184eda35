"""`dciot status`: one table of every service's health, read from their Prometheus endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.error import URLError

import typer
import yaml
from rich.console import Console
from rich.table import Table

from dciot.demo.monitor import scrape, total

console = Console()

# column -> (metric, which services have it)
COLUMNS: dict[str, str] = {
    "received": "dciot_ingest_messages_received_total",
    "written": "dciot_ingest_points_written_total",
    "rejected": "dciot_ingest_rejected_total",
    "retries": "dciot_ingest_write_retries_total",
    "pending": "dciot_ingest_pending_messages",
    "lag s": "dciot_ingest_consumer_lag_seconds",
    "published": "dciot_edge_readings_published_total",
    "buffered": "dciot_edge_buffered_readings",
    "replayed": "dciot_edge_readings_replayed_total",
    "dropped": "dciot_edge_buffer_dropped_total",
    "unreachable": "dciot_edge_devices_unreachable",
}


def _endpoint_from_config(path: Path) -> tuple[str, str]:
    """(name, metrics URL) from an edge or cloud config's `metrics` section."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    metrics = data.get("metrics") or {}
    if not metrics.get("port"):
        raise typer.BadParameter(f"{path}: metrics.port is not set, nothing to read")
    name = data.get("gateway_id") or "cloud"
    return name, f"http://{metrics.get('host', '127.0.0.1')}:{metrics['port']}/metrics"


def _rejected_by_reason(samples: dict[str, float]) -> str:
    reasons = {k.split("reason=")[1].rstrip("}"): v for k, v in samples.items()
               if k.startswith("dciot_ingest_rejected_total{") and v}
    return ", ".join(f"{r} {v:.0f}" for r, v in sorted(reasons.items()))


def _cell(header: str, row: dict[str, object]) -> str:
    value = row.get(header, "")
    if header == "up":
        return "[green]up[/]" if value else f"[red]down[/] {row.get('error', '')}"
    if isinstance(value, float):
        return f"{value:.1f}" if header == "lag s" else f"{value:.0f}"
    return str(value)


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table(title="dciot status")
    headers = ["service", "up", *COLUMNS, "rejected by reason"]
    for header in headers:
        left = header in ("service", "rejected by reason")
        table.add_column(header, justify="left" if left else "right")
    for row in rows:
        table.add_row(*(_cell(h, row) for h in headers))
    return table


def status(
    configs: list[Path] = typer.Argument(None, help="edge/cloud configs with a metrics port"),
    url: list[str] = typer.Option([], help="a metrics URL (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Show received, written, rejected, buffered, replayed, dropped, retries and lag."""
    endpoints = [_endpoint_from_config(p) for p in configs or []]
    endpoints += [(u, u) for u in url]
    if not endpoints:
        raise typer.BadParameter("give at least one config or --url")
    rows: list[dict[str, object]] = []
    for name, endpoint in endpoints:
        try:
            samples = scrape(endpoint)
        except (URLError, OSError) as err:
            rows.append({"service": name, "up": False, "error": str(err)})
            continue
        row: dict[str, object] = {"service": name, "up": True}
        for column, metric in COLUMNS.items():
            if any(k == metric or k.startswith(metric + "{") for k in samples):
                row[column] = total(samples, metric)
        row["rejected by reason"] = _rejected_by_reason(samples)
        rows.append(row)
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        console.print(_table(rows))
    if not all(r["up"] for r in rows):
        raise typer.Exit(1)
