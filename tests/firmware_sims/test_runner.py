"""run_simulators(): the physics loop drives registers on a fast clock; bind failures stop it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from dciot.runtime import free_port
from device_profiles.schema import ProfileSet
from firmware_sims.config import SimConfig
from firmware_sims.control import get_state
from firmware_sims.errors import ListenError
from firmware_sims.runner import run_simulators

PUMP = "dc-pumpstation-v1"


@pytest.fixture
def sim_document() -> dict[str, Any]:
    return {"time_scale": 3600, "start_time": "2024-11-15T02:00:00+08:00", "servers": [
        {"units": [{"unit": 1, "profile": PUMP, "seed": 4, "initial": {"sump_level": 2.9}}]}]}


async def test_physics_loop_starts_the_pump_on_a_fast_clock(sims: Any, apoll: Any) -> None:
    key = f"{sims.ports[0]}:1"

    async def running() -> bool:
        state = await asyncio.to_thread(get_state, sims.control_url)
        return bool(state["devices"][key]["values"]["pump1_running"])

    await apoll(running, timeout_s=30, what="pump1 to start as the sump fills")
    client = AsyncModbusTcpClient("127.0.0.1", port=sims.ports[0], timeout=1, retries=0)
    await client.connect()
    try:
        response = await client.read_discrete_inputs(0, count=1, device_id=1)
    finally:
        client.close()
    assert response.bits[0] is True


async def test_a_taken_port_raises_listen_error_and_nothing_stays_up(
        profiles: ProfileSet) -> None:
    control_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config = SimConfig.model_validate({
            "control": {"port": control_port},
            "servers": [{"port": free_port(), "units": [{"unit": 1, "profile": PUMP}]},
                        {"port": busy, "units": [{"unit": 1, "profile": PUMP}]}],
        }, context={"profiles": profiles})
        with pytest.raises(ListenError, match=str(busy)):
            await asyncio.wait_for(run_simulators(config, asyncio.Event(), profiles=profiles),
                                   10)
    for port in (control_port, config.servers[0].port):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))
