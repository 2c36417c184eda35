"""run_simulators(): the physics loop drives registers on a fast clock; bind failures stop it;
the Modbus RTU and CJ/T 188 buses answer through the links they make, and go away with them."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from dciot.runtime import free_port
from device_profiles.schema import ProfileSet
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.cjt188.codec import parse_address
from edge_agent.protocols.cjt188.driver import Cjt188Driver
from edge_agent.protocols.cjt188.transport import Cjt188Bus, SerialSettings
from edge_agent.protocols.modbus.bus_budget import SerialLine
from edge_agent.protocols.modbus.driver import ModbusDriver
from edge_agent.protocols.modbus.rtu_transport import ModbusRtuTransport
from firmware_sims.config import SimConfig
from firmware_sims.control import get_state, send_fault
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


HYDRANT = "generic-pt485-hydrant"
METER_PROFILE = "dc-watermeter-cjt188-v1"
METER = "78330123456789"


async def test_buses_answer_through_their_links_and_faults_reach_them(
        tmp_path: Path, profiles: ProfileSet, apoll: Any) -> None:
    control = free_port()
    rtu_link, meter_link = tmp_path / "tty" / "rtu-a", tmp_path / "tty" / "meters"
    rtu_link.parent.mkdir()
    rtu_link.symlink_to("/dev/pts/nothing")  # left over by a killed run: replaced
    config = SimConfig.model_validate({
        "physics": False, "control": {"port": control},
        "rtu_buses": [{"name": "rtu-a", "link": str(rtu_link), "baudrate": 19200, "units": [
            {"unit": 2, "profile": HYDRANT, "initial": {"pressure": 0.352, "decimal_places": 3}}]}],
        "cjt188_buses": [{"name": "meters", "link": str(meter_link), "meters": [
            {"address": METER, "profile": METER_PROFILE, "cumulative_m3": 12.34}]}],
    }, context={"profiles": profiles})
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulators(config, stop, profiles=profiles))
    await apoll(lambda: task.done() or _listening(control), what="the control port")
    metrics = EdgeMetrics("gw-test")
    rtu = ModbusRtuTransport(str(rtu_link), SerialLine(19200, "N", 2), metrics)
    rtu.attach(2, "hydrant", 0.5)
    meters = Cjt188Bus(SerialSettings(str(meter_link), 2400, "N"), metrics)
    try:
        assert os.readlink(rtu_link).startswith("/dev/pts/")
        hydrant = ModbusDriver(profiles.get(HYDRANT), rtu, 2)
        assert (await hydrant.read())["pressure"] == 352
        await asyncio.to_thread(send_fault, f"http://127.0.0.1:{control}", device="rtu-a:2",
                                action="force", point="pressure", value=0.118)
        assert (await hydrant.read())["pressure"] == 118
        meter = Cjt188Driver(profiles.get(METER_PROFILE), meters, parse_address(METER))
        assert (await meter.read())["cumulative_flow"] == 12.34
    finally:
        await rtu.close()
        await meters.close()
        stop.set()
        await asyncio.wait_for(task, 10)
    assert not rtu_link.is_symlink() and not meter_link.is_symlink()


async def test_a_path_that_is_not_a_link_is_not_replaced(tmp_path: Path,
                                                         profiles: ProfileSet) -> None:
    taken = tmp_path / "rtu-a"
    taken.write_text("a real file", encoding="utf-8")
    config = SimConfig.model_validate({
        "control": {"port": free_port()},
        "rtu_buses": [{"name": "rtu-a", "link": str(taken),
                       "units": [{"unit": 1, "profile": HYDRANT}]}],
    }, context={"profiles": profiles})
    with pytest.raises(ListenError, match="cannot link"):
        await asyncio.wait_for(run_simulators(config, asyncio.Event(), profiles=profiles), 10)
    assert taken.read_text(encoding="utf-8") == "a real file"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
