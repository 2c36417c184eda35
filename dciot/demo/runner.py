"""Runs the simulated district end to end: real mosquitto and influxd on free loopback ports,
the device simulators, one edge agent per site, the cloud services and the event centre (its
alarms become events; its figures go to InfluxDB), each its own process; injects faults on a
schedule so alarms are raised and cleared."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import yaml

from dciot.demo import district
from dciot.demo import tls as demo_tls
from dciot.demo.monitor import AlarmSubscriber, scrape, total
from dciot.demo.services import DciotProcess, wait_for_port
from dciot.runtime import InfluxServer, MosquittoServer, free_ports
from firmware_sims.control import send_fault

DATABASE = "dciot"
CST = timezone(timedelta(hours=8))
EVENT_STATS_INTERVAL_S = 2.0


@dataclass
class DemoOptions:
    run_dir: Path = Path("run/demo")
    poles: int = 20
    pump_stations: int = 2
    interval_s: float = 1.0
    push_interval_s: float = 2.0
    """How often the UITD and the LoRaWAN devices report (they push; nobody polls them)."""
    time_scale: float = 60.0
    fault_cycle_s: float = 40.0
    tls: bool = False
    """Everything over TLS with client certificates, on a locked-down broker (dciot/demo/tls)."""


@dataclass(frozen=True)
class FaultStep:
    at_s: float
    label: str
    faults: list[dict[str, object]]


@dataclass
class District:
    """The running district; `start()` brings everything up, `stop()` tears it down."""

    options: DemoOptions
    sites: list[district.Site] = field(default_factory=list)
    ports: district.Ports | None = None
    mosquitto: MosquittoServer | None = None
    influx: InfluxServer | None = None
    processes: list[DciotProcess] = field(default_factory=list)
    alarms: AlarmSubscriber | None = None
    tls: demo_tls.DemoTls | None = None
    events_port: int | None = None

    @property
    def event_centre_url(self) -> str:
        assert self.events_port is not None
        return f"http://127.0.0.1:{self.events_port}"

    @property
    def metrics_url(self) -> str:
        assert self.ports is not None
        return f"http://127.0.0.1:{self.ports.cloud_metrics}/metrics"

    @property
    def control_url(self) -> str:
        assert self.ports is not None
        return f"http://127.0.0.1:{self.ports.sim_control}"

    def _write(self, name: str, document: dict[str, object]) -> Path:
        path = self.options.run_dir / "config" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
        return path

    def start(self, say: Callable[[str], None] = print) -> None:
        opts = self.options
        if opts.run_dir.exists():
            shutil.rmtree(opts.run_dir)
        opts.run_dir.mkdir(parents=True)
        n_sites = district.sites_needed(opts.poles, opts.pump_stations)
        # every port distinct: the simulators bind theirs before influxd and mosquitto start
        picked = free_ports(7 + n_sites)
        self.ports = ports = district.Ports(
            mqtt=picked[0], influx=picked[1], sim_control=picked[2], cloud_metrics=picked[3],
            sim_servers=picked[7:], fire_listener=picked[4], water_listener=picked[5])
        self.events_port = picked[6]
        tty_dir = (opts.run_dir / "tty").resolve()
        self.sites = [
            *district.plan_district(opts.poles, opts.pump_stations, ports.sim_servers),
            district.plan_fire_site(ports.fire_listener, tty_dir, opts.push_interval_s),
            district.plan_water_site(ports.water_listener, tty_dir, opts.push_interval_s),
        ]
        sim = self._start_simulators()  # they need neither broker nor database: start first
        self.tls = None
        if opts.tls:  # the clients speak to the TLS listener: its port is the demo's MQTT port
            self.tls, self.mosquitto = demo_tls.prepare(
                opts.run_dir, [s.gateway_id for s in self.sites], port=ports.mqtt)
        else:
            self.mosquitto = MosquittoServer(opts.run_dir / "mosquitto", port=ports.mqtt)
        self.influx = InfluxServer(opts.run_dir / "influxdb", port=ports.influx)
        say(f"starting mosquitto on 127.0.0.1:{ports.mqtt} and influxd on "
            f"127.0.0.1:{ports.influx}")
        self.mosquitto.start()
        self.influx.start()
        self.alarms = AlarmSubscriber(
            "127.0.0.1", ports.mqtt, self.tls.client_tls(demo_tls.VIEWER) if self.tls else None)
        self.alarms.start()
        self._start_services(sim, say)

    def _start_simulators(self) -> DciotProcess:
        ports = self.ports
        assert ports is not None
        start = datetime.now(CST).replace(hour=17, minute=0, second=0, microsecond=0)
        sims = self._write("sims.yaml", district.sim_config(
            self.sites, ports.sim_control, self.options.time_scale, start.isoformat()))
        sim = DciotProcess("simulators", ["sim", "run", str(sims)],
                           self.options.run_dir / "logs" / "sims.log")
        sim.start()
        self.processes.append(sim)
        return sim

    def _event_centre_config(self) -> dict[str, object]:
        """The centre on its own port, its figures in the demo database every few seconds.
        Escalations go to the demo broker, except over TLS (the centre's escalation client
        has no certificate, and the locked-down broker refuses anonymous clients)."""
        ports, state = self.ports, (self.options.run_dir / "state").resolve()
        assert ports is not None and self.events_port is not None
        return {
            "host": "127.0.0.1", "port": self.events_port,
            "db_path": str(state / "events.sqlite"),
            "broker": None if self.options.tls else {"host": "127.0.0.1", "port": ports.mqtt},
            "influx": {"url": f"http://127.0.0.1:{ports.influx}", "api": "v1",
                       "database": DATABASE},
            "stats_interval_s": EVENT_STATS_INTERVAL_S,
        }

    def _cloud_config(self) -> dict[str, object]:
        """district.cloud_config, with the alarms sent to the event centre (through an outbox
        in the run dir)."""
        opts, ports = self.options, self.ports
        assert ports is not None
        config = district.cloud_config(
            self.sites, ports, DATABASE, opts.interval_s,
            self.tls.client_tls(demo_tls.INGEST) if self.tls else None)
        existing = config.get("rules")
        rules: dict[str, object] = dict(existing) if isinstance(existing, dict) else {}
        rules.update(event_centre_url=self.event_centre_url,
                     outbox_path=str((opts.run_dir / "state" / "outbox.sqlite").resolve()))
        return {**config, "rules": rules}

    def _start_services(self, sim: DciotProcess, say: Callable[[str], None]) -> None:
        """The event centre and the cloud, then (once they and the simulators are up) one edge
        agent per site."""
        opts, ports = self.options, self.ports
        assert ports is not None and self.events_port is not None
        logs = opts.run_dir / "logs"
        events = self._write("events.yaml", self._event_centre_config())
        events_proc = DciotProcess("events", ["events", "serve", str(events)],
                                   logs / "events.log")
        events_proc.start()
        self.processes.append(events_proc)  # stopped after the cloud: its outbox drains first
        cloud = self._write("cloud.yaml", self._cloud_config())
        cloud_proc = DciotProcess("cloud", ["cloud", "run", str(cloud)], logs / "cloud.log")
        cloud_proc.start()
        self.processes.append(cloud_proc)
        for port in [*ports.sim_servers, ports.sim_control]:
            wait_for_port("127.0.0.1", port, 30, sim)
        wait_for_port("127.0.0.1", ports.cloud_metrics, 30, cloud_proc)
        wait_for_port("127.0.0.1", self.events_port, 30, events_proc)
        for site in self.sites:
            path = self._write(f"{site.gateway_id}.yaml",
                               district.gateway_config(
                                   site, ports.mqtt, opts.interval_s,
                                   self.tls.client_tls(site.gateway_id) if self.tls else None))
            proc = DciotProcess(site.gateway_id, ["edge", "run", str(path)],
                                logs / f"{site.gateway_id}.log")
            proc.start()
            self.processes.append(proc)
        devices = sum(len(s.devices) for s in self.sites)
        say(f"{len(self.sites)} edge agents, {devices} simulated devices (Modbus TCP and RTU, "
            f"GB/T 26875, CJ/T 188, LoRaWAN), cloud ingest and rules, event centre "
            f"{self.event_centre_url} running; logs in {logs}")

    def fault_plan(self, duration_s: float | None) -> list[FaultStep]:
        """Inject, then release, once per cycle (or once, fitted into a short run)."""
        devices = [d for s in self.sites for d in s.devices]
        pump = next(d for d in devices if d.profile == district.PUMP_PROFILE)
        poles = [d for d in devices if d.profile == district.POLE_PROFILE]
        pressed, muted = poles[min(2, len(poles) - 1)], poles[min(6, len(poles) - 1)]
        smoke = next(d for d in devices if d.profile == district.SMOKE_PROFILE)
        meter = next(d for d in devices if d.profile == district.LORA_WATER_PROFILE)
        inject: list[dict[str, object]] = [
            {"device": pump.key, "action": "force", "point": "sump_level", "value": 4.9},
            {"device": pressed.key, "action": "force", "point": "emergency_button",
             "value": True},
            {"device": muted.key, "action": "mute"},
            {"device": smoke.key, "action": "force", "point": "fire_alarm", "value": True},
            {"device": meter.key, "action": "force", "point": "leak", "value": True},
        ]
        release: list[dict[str, object]] = [
            {"device": pump.key, "action": "release", "point": "sump_level"},
            {"device": pressed.key, "action": "release", "point": "emergency_button"},
            {"device": muted.key, "action": "unmute"},
            {"device": smoke.key, "action": "release", "point": "fire_alarm"},
            {"device": meter.key, "action": "release", "point": "leak"},
        ]
        cycle = self.options.fault_cycle_s
        if duration_s is not None and duration_s < cycle:
            cycle = duration_s
        starts = [0.0] if duration_s is not None and duration_s <= cycle * 1.5 else None
        steps: list[FaultStep] = []
        horizon = duration_s if duration_s is not None else 365 * 86400.0
        for base in starts or [k * cycle for k in range(int(horizon // cycle) + 1)]:
            steps.append(FaultStep(base + 0.2 * cycle,
                                   f"注入故障: {pump.name}水位4.9 m, {pressed.name}一键报警, "
                                   f"{muted.name}断线, {smoke.name}火警, {meter.name}漏水",
                                   inject))
            steps.append(FaultStep(base + 0.6 * cycle,
                                   "解除故障: 水位、报警按钮、通信、火警、漏水恢复", release))
        return [s for s in steps if s.at_s < horizon]

    def apply(self, step: FaultStep) -> None:
        for fault in step.faults:
            send_fault(self.control_url, **fault)

    def summary(self) -> dict[str, object]:
        assert self.influx is not None and self.alarms is not None
        try:
            samples = scrape(self.metrics_url)
        except OSError:
            samples = {}
        counted = self.influx.query("SELECT count(*) FROM /.*/", db=DATABASE)
        with self.alarms.lock:
            log = self.alarms.log
            raised, cleared, active = log.raised, log.cleared, len(log.active)
        return {
            "points_written": int(total(samples, "dciot_ingest_points_written_total")),
            "devices_online": int(total(samples, "dciot_devices_online")),
            "devices_known": int(total(samples, "dciot_devices_known")),
            "gateways_online": int(total(samples, "dciot_gateways_online")),
            "alarms_raised": raised,
            "alarms_cleared": cleared,
            "alarms_active": active,
            "rejected": int(total(samples, "dciot_ingest_rejected_total")),
            "events": self._events_reported(),
            "event_centre_url": self.event_centre_url,
            "influx_url": self.influx.url,
            "influx_db": DATABASE,
            "series_counts": _series_counts(counted),
            "run_dir": str(self.options.run_dir.resolve()),
        }

    def _events_reported(self) -> int | None:
        """Events the centre holds (its total row); None when it does not answer."""
        try:
            response = httpx.get(f"{self.event_centre_url}/api/v1/stats", timeout=5)
            response.raise_for_status()
            return int(response.json()["departments"][-1]["events"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError):
            return None

    def stop(self) -> None:
        """Edge agents first (they say offline), then cloud, event centre, simulators, broker,
        database."""
        for proc in reversed(self.processes):
            proc.stop()
        if self.alarms is not None:
            self.alarms.stop()
        for server in (self.mosquitto, self.influx):
            if server is not None:
                server.stop()


def _series_counts(result: dict[str, object]) -> dict[str, int]:
    """{measurement: number of rows} from a `SELECT count(*)` answer."""
    counts: dict[str, int] = {}
    for res in result.get("results", []):  # type: ignore[union-attr]
        for series in res.get("series", []):
            values = series["values"][0][1:]
            counts[series["name"]] = max((int(v) for v in values if v is not None), default=0)
    return counts


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False
