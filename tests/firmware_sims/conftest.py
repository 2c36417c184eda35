"""Fixtures for the simulator tests: profiles, a simulated clock start, running simulators
on free loopback ports, and an async poll with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from dciot.runtime import free_port
from device_profiles.schema import ProfileSet, load_profiles
from firmware_sims.clock import DISTRICT_TZ
from firmware_sims.config import SimConfig
from firmware_sims.runner import run_simulators

POLE = "dc-smartpole-v1"
PUMP = "dc-pumpstation-v1"


@pytest.fixture(scope="session")
def profiles() -> ProfileSet:
    return load_profiles()


@pytest.fixture
def november_midnight() -> datetime:
    return datetime(2024, 11, 15, 0, 0, tzinfo=DISTRICT_TZ)


AsyncPoll = Callable[..., Awaitable[Any]]


@pytest.fixture
def apoll() -> AsyncPoll:
    """`await apoll(predicate, timeout_s=10, what=...)`: the predicate's first truthy value.

    The predicate may be sync or async; the test fails at the deadline.
    """
    async def poll(predicate: Callable[[], Any], timeout_s: float = 10.0,
                   what: str = "condition") -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            if loop.time() > deadline:
                pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
            await asyncio.sleep(0.05)
    return poll


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class RunningSims:
    config: SimConfig
    control_url: str
    ports: list[int]
    task: asyncio.Task[None]


@pytest.fixture
def sim_document() -> dict[str, Any]:
    """The config of the `sims` fixture; override or mutate it in a test module."""
    return {"physics": False, "servers": []}


@pytest.fixture
async def sims(sim_document: dict[str, Any], apoll: AsyncPoll,
               profiles: ProfileSet) -> AsyncIterator[RunningSims]:
    """run_simulators() on free ports: `sim_document`'s servers get ports in order."""
    control_port = free_port()
    document = dict(sim_document)
    document["control"] = {"host": "127.0.0.1", "port": control_port}
    ports = [free_port() for _ in document["servers"]]
    document["servers"] = [{**server, "host": "127.0.0.1", "port": port}
                           for server, port in zip(document["servers"], ports, strict=True)]
    config = SimConfig.model_validate(document, context={"profiles": profiles})
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulators(config, stop, profiles=profiles))
    await apoll(lambda: task.done() or _accepts(control_port), what="the control port")
    if task.done():
        task.result()
    try:
        yield RunningSims(config, f"http://127.0.0.1:{control_port}", ports, task)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
