"""Every dashboard's every query, expanded as Grafana expands it, run on the InfluxDB that a
short run of the whole simulated district filled (simulators, edge agents, ingest, rules, event
centre): each must parse and return non-null data. A dashboard naming a measurement, field or tag
the stack does not write fails here."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from cloud_broker.config import InfluxConfig
from cloud_broker.ingest.retention import HttpInfluxQL, backfill
from dashboards.catalog import build_all
from dashboards.verify import InfluxEndpoint, Selection, verify
from dciot.demo.runner import DATABASE, DemoOptions, District, FaultStep

FAULT_CYCLE_S = 30.0


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[District, int]]:
    run = District(DemoOptions(run_dir=tmp_path_factory.mktemp("district") / "run",
                               poles=20, pump_stations=2, fault_cycle_s=FAULT_CYCLE_S))
    started_ms = int(time.time() * 1000)
    try:
        run.start(say=lambda _line: None)
        yield run, started_ms
    finally:
        run.stop()


def _rows(district: District, query: str) -> list[dict[str, object]]:
    assert district.influx is not None
    return district.influx.rows(query, db=DATABASE)


def _drive(district: District, poll: Callable[..., object]) -> None:
    """One fault cycle (alarms raised and cleared, events created), a malformed LoRaWAN datagram
    (a rejected frame), and enough time for every periodic figure to have two points."""
    began = time.monotonic()
    for step in district.fault_plan(FAULT_CYCLE_S):
        while time.monotonic() - began < step.at_s:
            time.sleep(0.2)
        district.apply(step)
    # states a short run in the early evening would not reach on its own
    devices = [d for site in district.sites for d in site.devices]
    pole = next(d for d in devices if d.profile == "dc-smartpole-v1")
    pump = next(d for d in devices if d.profile == "dc-pumpstation-v1")
    district.apply(FaultStep(0, "lamp on, second pump running", [
        {"device": pole.key, "action": "force", "point": "lamp_on", "value": True},
        {"device": pump.key, "action": "force", "point": "pump2_running", "value": True}]))
    assert district.ports is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\x02\x00\x00\x7f not a semtech packet",
                   ("127.0.0.1", district.ports.water_listener))
    checks = {
        "alarms raised and cleared": 'SELECT count("alarm_id") FROM "alarms" '
                                     "WHERE \"state\" = 'cleared'",
        "event-centre figures": 'SELECT count("events") FROM "event_centre"',
        "a rejected frame counted": 'SELECT count("total") FROM "edge_counters" '
                                    "WHERE \"kind\" = 'rejected'",
        "bool transitions": 'SELECT count("value") FROM "state_changes"',
        "poll counters moving": 'SELECT count("total") FROM "edge_counters" '
                                "WHERE \"kind\" = 'poll'",
    }
    # counters are reported every 2 s: 12 reports span two 10 s panel intervals at least
    needed = {"a rejected frame counted": 12, "poll counters moving": 12}
    for what, query in checks.items():
        least = needed.get(what, 2)
        poll(lambda q=query, n=least:
             (_rows(district, q) or [{}])[0].get("count", 0) >= n, timeout_s=90, what=what)


def test_every_dashboard_query_returns_data(district: tuple[District, int],
                                            poll: Callable[..., object]) -> None:
    run, started_ms = district
    _drive(run, poll)
    assert run.influx is not None
    now_ms = int(time.time() * 1000)
    # the aggregates are stamped at the start of their hour: the range begins there
    from_ms = started_ms - started_ms % 3_600_000
    # history written before the continuous queries ran: aggregate it as they would have
    influxql = HttpInfluxQL(InfluxConfig(url=run.influx.url, database=DATABASE))
    backfill(influxql, DATABASE, started_ms - 60_000, now_ms)
    report = verify(build_all(), InfluxEndpoint(run.influx.url, DATABASE),
                    from_ms, now_ms + 60_000, Selection())
    problems = "\n".join(f"{r.dashboard_uid} {r.where} {r.ref_id}: {r.problem}\n    {r.query}"
                         for r in report.problems)
    assert report.ok, problems
    queried = {r.dashboard_uid for r in report.results}
    assert queried == {b.uid for b in build_all()}
    assert len(report.results) > 100


def test_the_place_variables_offer_every_town_and_domain(district: tuple[District, int]
                                                         ) -> None:
    run, started_ms = district
    assert run.influx is not None
    now_ms = int(time.time() * 1000)
    report = verify([b for b in build_all() if b.uid == "dciot-overview"],
                    InfluxEndpoint(run.influx.url, DATABASE), started_ms - 60_000,
                    now_ms + 60_000, Selection())
    variables = report.variables["dciot-overview"]
    assert set(variables["domain"].values) == {"smart_pole", "pump_station", "fire", "water"}
    assert set(variables["town"].values) == {site.town for site in run.sites}
