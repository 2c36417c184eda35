"""`dciot demo`: the whole simulated district end to end, with a live view."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from dciot.demo.monitor import scrape, total
from dciot.demo.runner import DemoOptions, District
from dciot.runtime import MissingBinaryError

console = Console()

SEVERITY_STYLE = {"critical": "bold red", "major": "red", "minor": "yellow", "warning": "cyan"}
DOMAIN_ORDER = ("smart_pole", "pump_station", "fire", "water")


def _domains(samples: dict[str, float]) -> list[str]:
    """Domains the cloud knows devices of, the district's usual ones first."""
    prefix = "dciot_devices_known{domain="
    known = {k[len(prefix):-1] for k in samples if k.startswith(prefix)}
    return [d for d in DOMAIN_ORDER if d in known] + sorted(known - set(DOMAIN_ORDER))


def _view(district: District, samples: dict[str, float], rate: float, events: list[str],
          elapsed: float) -> Group:
    status = Table(title=f"数字东昌 — simulated district ({elapsed:.0f} s)", show_header=False)
    status.add_column("what")
    status.add_column("value", justify="right")
    gateways = len(district.sites)
    status.add_row("gateways online", f"{total(samples, 'dciot_gateways_online'):.0f} / {gateways}")
    for domain in _domains(samples):
        online = samples.get(f"dciot_devices_online{{domain={domain}}}", 0)
        known = samples.get(f"dciot_devices_known{{domain={domain}}}", 0)
        status.add_row(f"{domain} devices online", f"{online:.0f} / {known:.0f}")
    status.add_row("devices unreachable", f"{total(samples, 'dciot_devices_unreachable'):.0f}")
    status.add_row("points written", f"{total(samples, 'dciot_ingest_points_written_total'):.0f}")
    status.add_row("points written / s", f"{rate:.1f}")
    status.add_row("rejected", f"{total(samples, 'dciot_ingest_rejected_total'):.0f}")
    alarms = Table(title="Active alarms (from MQTT dc/v1/alarms/#)")
    for column in ("severity", "domain", "title", "device", "since"):
        alarms.add_column(column)
    assert district.alarms is not None
    with district.alarms.lock:
        active = list(district.alarms.log.active.values())
        raised, cleared = district.alarms.log.raised, district.alarms.log.cleared
    for a in active:
        since = time.strftime("%H:%M:%S", time.localtime(int(str(a["raised_ts"])) / 1000))
        sev = str(a["severity"])
        alarms.add_row(f"[{SEVERITY_STYLE.get(sev, '')}]{sev}[/]", str(a.get("domain", "")),
                       str(a["title_zh"]), str(a["device"]), since)
    footer = f"alarms raised {raised}, cleared {cleared}. " + (events[-1] if events else "")
    return Group(status, alarms, footer)


def demo(
    duration: float | None = typer.Option(None, help="run this many seconds, then stop "
                                          "(default: until Ctrl-C)"),
    summary_json: Path | None = typer.Option(None, help="write a JSON summary here at the end"),
    run_dir: Path = typer.Option(Path("run/demo"), help="data and logs (wiped at start)"),
    poles: int = typer.Option(20, min=1, max=500),
    pump_stations: int = typer.Option(2, min=1, max=50),
    interval: float = typer.Option(1.0, min=0.2, help="poll interval of every polled device "
                                   "(Modbus, CJ/T 188), s"),
    tls: bool = typer.Option(False, "--tls", help="everything over TLS with client "
                             "certificates, on a locked-down broker (ACLs per account)"),
) -> None:
    """Run a simulated district end to end on a real broker and database."""
    options = DemoOptions(run_dir=run_dir, poles=poles, pump_stations=pump_stations,
                          interval_s=interval, tls=tls)
    district = District(options)
    try:
        district.start(say=console.print)
    except MissingBinaryError as err:
        console.print(f"[red]{err}[/red]")
        district.stop()
        raise typer.Exit(3) from err
    except Exception:
        district.stop()
        raise
    plan = district.fault_plan(duration)
    events: list[str] = []
    started = time.monotonic()
    live_view = sys.stdout.isatty()
    last_points, last_t, rate, last_print, alarms_shown = 0.0, started, 0.0, 0.0, 0
    try:
        with Live(console=console, refresh_per_second=2, transient=False,
                  auto_refresh=False) if live_view else _NoLive() as live:
            while duration is None or time.monotonic() - started < duration:
                elapsed = time.monotonic() - started
                while plan and plan[0].at_s <= elapsed:
                    step = plan.pop(0)
                    district.apply(step)
                    events.append(f"[{elapsed:.0f} s] {step.label}")
                    if not live_view:
                        console.print(events[-1], soft_wrap=True)
                try:
                    samples = scrape(district.metrics_url)
                except OSError:
                    samples = {}
                now = time.monotonic()
                points = total(samples, "dciot_ingest_points_written_total")
                if now - last_t >= 1.0:
                    rate, last_points, last_t = (points - last_points) / (now - last_t), points, now
                if live_view:
                    live.update(_view(district, samples, rate, events, elapsed), refresh=True)
                else:
                    alarms_shown = _print_alarms(district, alarms_shown, elapsed)
                if not live_view and now - last_print >= 5:
                    last_print = now
                    console.print(f"[{elapsed:.0f} s] points written {points:.0f} "
                                  f"({rate:.1f}/s), devices online {_online(samples)}, "
                                  f"alarms active "
                                  f"{len(district.alarms.log.active) if district.alarms else 0}",
                                  soft_wrap=True)
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping…")
    summary = district.summary()
    district.stop()
    console.print_json(json.dumps(summary, ensure_ascii=False))
    if summary_json is not None:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, ensure_ascii=False, indent=2),
                                encoding="utf-8")


def _print_alarms(district: District, shown: int, elapsed: float) -> int:
    """Print the alarm transitions seen since the first `shown`; return how many there are."""
    assert district.alarms is not None
    with district.alarms.lock:
        new = district.alarms.log.history[shown:]
    for a in new:
        console.print(f"[{elapsed:.0f} s] alarm {a.get('state')}: {a.get('severity')} "
                      f"{a.get('domain')} {a.get('device')} {a.get('title_zh')}", soft_wrap=True)
    return shown + len(new)


def _online(samples: dict[str, float]) -> str:
    """"37 / 39 (smart_pole 19/20, pump_station 2/2, fire 9/9, water 7/8)"."""
    by_domain = ", ".join(
        f"{d} {samples.get(f'dciot_devices_online{{domain={d}}}', 0):.0f}/"
        f"{samples.get(f'dciot_devices_known{{domain={d}}}', 0):.0f}" for d in _domains(samples))
    overall = (f"{total(samples, 'dciot_devices_online'):.0f} / "
               f"{total(samples, 'dciot_devices_known'):.0f}")
    return f"{overall} ({by_domain})" if by_domain else overall


class _NoLive:
    """Stands in for rich's Live when the output is not a terminal (CI, logs)."""

    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def update(self, *_: object, **__: object) -> None:
        return None
