"""Chaos on real processes with exact counts: K readings taken at the edge become exactly K
points in InfluxDB whatever fails on the way (docs/reliability.md, failure matrix).

K is what the edge agent recorded: a reading is taken when it is committed to the edge's disk
buffer (`dciot_edge_readings_recorded`, which survives restarts). Each scenario mutes the
devices at the end, waits for the edge buffer to drain and counts the points in InfluxDB.
"""

from __future__ import annotations

import time

import pytest

OUTAGE_S = 30.0

EXPECTED = {"voltage": (221.3, 221.3), "energy": (12345.67, 12345.67),
            "temperature": (-3.5, -3.5), "tilt": (0.37, 0.37), "dimming": (80, 80),
            "lamp_on_false": (0, 0)}


def _exactly_k(rig) -> None:  # type: ignore[no-untyped-def]
    k = rig.stop_taking_readings()
    assert k > 0
    landed = rig.settled_points(k)
    assert landed == k, f"{landed} points in InfluxDB for {k} readings taken"
    assert rig.field_ranges() == EXPECTED


def _run_a_while(rig, seconds: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    before = rig.points_in_influx()
    rig.wait_landing(before)
    time.sleep(seconds)  # keep taking readings for a while (the load, not a condition)


def test_broker_down_for_30_s(rig) -> None:  # type: ignore[no-untyped-def]
    _run_a_while(rig)
    rig.mosquitto.stop()
    time.sleep(OUTAGE_S)  # the outage itself
    assert rig.edge_metric("dciot_edge_buffered_readings") > OUTAGE_S * 10
    rig.mosquitto.start()
    rig.wait(lambda: rig.edge_metric("dciot_edge_readings_replayed_total") > 0, 30,
             "the backlog to be replayed")
    _exactly_k(rig)


def test_influxdb_down_for_30_s(rig) -> None:  # type: ignore[no-untyped-def]
    _run_a_while(rig)
    rig.influx.stop()
    time.sleep(OUTAGE_S)  # the outage itself
    assert rig.cloud_metric("dciot_ingest_write_retries_total") > 0
    assert rig.cloud_metric("dciot_ingest_pending_messages") > 0
    rig.influx.start()
    _exactly_k(rig)


def test_edge_agent_killed_mid_stream(rig) -> None:  # type: ignore[no-untyped-def]
    _run_a_while(rig)
    rig.processes["edge"].kill()
    time.sleep(1.0)  # devices go unread while it is dead
    rig.start_edge()
    _run_a_while(rig, 1.0)
    _exactly_k(rig)


def test_ingest_killed_mid_stream(rig) -> None:  # type: ignore[no-untyped-def]
    _run_a_while(rig)
    rig.processes["cloud"].kill()
    time.sleep(3.0)  # readings queue in the ingest's persistent session meanwhile
    rig.start_cloud()
    _run_a_while(rig, 1.0)
    _exactly_k(rig)


@pytest.mark.buffer_max_bytes(8 * 1024)
def test_too_small_buffer_drops_are_reported(rig) -> None:  # type: ignore[no-untyped-def]
    _run_a_while(rig, 1.0)
    rig.mosquitto.stop()
    rig.wait(lambda: rig.edge_metric("dciot_edge_buffer_dropped_total") > 50, 30,
             "the buffer bound to drop readings")
    rig.mosquitto.start()
    k = rig.stop_taking_readings()

    def reported() -> int:
        return int(rig.cloud_metric("dciot_edge_reported_drops"))

    rig.wait(lambda: reported() == rig.edge_metric("dciot_edge_buffer_dropped_total"), 30,
             "the gateway to report its drops")
    landed = rig.settled_points(k - reported())
    assert reported() > 50
    assert landed + reported() == k
    assert rig.field_ranges() == EXPECTED
