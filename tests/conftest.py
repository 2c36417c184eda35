"""Real servers for integration tests: influxd (one per session, a database per test) and
mosquitto (one per test), on free loopback ports in temp dirs, stopped by PID."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dciot.runtime import InfluxServer, MosquittoServer

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influx_db(influxd: InfluxServer) -> str:
    name = f"test_{next(_db_numbers)}_{time.monotonic_ns() % 10**9}"
    influxd.create_database(name)
    return name


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def poll_until(predicate: Callable[[], object], timeout_s: float = 20.0,
               interval_s: float = 0.1, what: str = "condition") -> object:
    """Return the predicate's first truthy value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


@pytest.fixture
def poll() -> Callable[..., object]:
    """`poll(predicate, timeout_s=20, what=...)`: wait for a condition with a deadline."""
    return poll_until
