"""Pushed devices run from the simulator config (firmware_sims/reporters.py): a UITD and LoRa
gateways report to the agent's real listeners, which start after them; faults sent to the
control API by device name go out at once, long before the next periodic report."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dciot.runtime import free_port
from device_profiles.schema import ProfileSet
from edge_agent.config import DeviceConfig
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.base import Raw
from edge_agent.protocols.gbt26875.listener import Gbt26875Listener
from edge_agent.protocols.gbt26875.plugin import Gbt26875Params, build_routes
from edge_agent.protocols.semtech_udp.config import SemtechUdpConfig
from edge_agent.protocols.semtech_udp.listener import SemtechUdpListener, Session
from firmware_sims.config import SimConfig
from firmware_sims.control import get_state, send_fault
from firmware_sims.reporters import analog_values, state_word
from firmware_sims.runner import run_simulators

UITD = "000000000379"
SMOKE, HYDRANT = 131082, 7
SMOKE_PROFILE, HYDRANT_PROFILE = "dc-smokedetector-v1", "dc-hydrant-pressure-v1"
METER_PROFILE = "dc-lorawan-watermeter-v1"
NWK, APP = "2b7e151628aed2a6abf7158809cf4f3c", "3c4fcf098815f7aba6d2ae2816157e2b"
METER_ADDR = 0x26011BDA
SLOW_S = 60.0  # the periodic report interval: anything sooner was pushed by a change


@dataclass
class Received:
    readings: list[tuple[str, dict[str, Raw]]] = field(default_factory=list)

    def sink(self, device: str, raw: dict[str, Raw], _ts: int | None) -> None:
        self.readings.append((device, raw))

    def of(self, device: str, **match: Raw) -> list[dict[str, Raw]]:
        return [raw for d, raw in self.readings
                if d == device and all(raw.get(k) == v for k, v in match.items())]


@dataclass
class Running:
    control_url: str
    received: Received


@contextlib.asynccontextmanager
async def simulators(document: dict[str, Any], profiles: ProfileSet,
                     apoll: Callable[..., Any]) -> AsyncIterator[str]:
    control = free_port()
    config = SimConfig.model_validate({**document, "control": {"port": control}},
                                      context={"profiles": profiles})
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulators(config, stop, profiles=profiles))
    await apoll(lambda: task.done() or _listening(control), what="the control port")
    try:
        yield f"http://127.0.0.1:{control}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def listening(listener: Gbt26875Listener | SemtechUdpListener,
                    received: Received) -> AsyncIterator[None]:
    task = asyncio.create_task(listener.run(received.sink))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def fault(url: str, **fields: object) -> dict[str, Any]:
    return await asyncio.to_thread(send_fault, url, **fields)


@pytest.mark.parametrize(("profile", "values", "word"), [
    (SMOKE_PROFILE, {"fire_alarm": False, "fault": False, "shielded": False,
                     "power_fault": False, "normal": True, "state_word": 0}, 0b1),
    (SMOKE_PROFILE, {"fire_alarm": True, "fault": False, "shielded": False,
                     "power_fault": True, "normal": True, "state_word": 0}, 0b1_0000_0011),
    (SMOKE_PROFILE, {"fire_alarm": False, "fault": True, "shielded": False,
                     "power_fault": False, "normal": False, "state_word": 0}, 0b100),
    (HYDRANT_PROFILE, {"pipe_pressure": 0.35, "fault": False}, 0b1),
], ids=["normal", "fire-and-power-fault", "fault-in-test-mode", "no-normal-point"])
def test_state_word_follows_the_profile_bits(profiles: ProfileSet, profile: str,
                                             values: dict[str, Raw], word: int) -> None:
    assert state_word(profiles.get(profile), values) == word


def test_analog_values_by_analog_type(profiles: ProfileSet) -> None:
    hydrant = profiles.get(HYDRANT_PROFILE)
    assert analog_values(hydrant, {"pipe_pressure": 0.35, "fault": False}) == [(5, 3500)]
    assert analog_values(profiles.get(SMOKE_PROFILE), {"fire_alarm": True}) == []


def uitd_document(port: int) -> dict[str, Any]:
    return {"uitds": [{"name": "uitd-a", "port": port, "address": UITD, "interval_s": SLOW_S,
                       "retry_s": 0.1, "components": [
                           {"profile": SMOKE_PROFILE, "component_type": 42,
                            "component_address": SMOKE},
                           {"profile": HYDRANT_PROFILE, "system_type": 11, "component_type": 0,
                            "component_address": HYDRANT, "initial": {"pipe_pressure": 0.35}}]}]}


def uitd_routes(profiles: ProfileSet) -> Any:
    devices = [("smoke-01", SMOKE_PROFILE, {"uitd_address": UITD, "system_address": 1,
                                            "component_type": 42, "component_address": SMOKE}),
               ("hydrant-01", HYDRANT_PROFILE, {"uitd_address": UITD, "system_type": 11,
                                                "system_address": 1, "component_type": 0,
                                                "component_address": HYDRANT})]
    return build_routes([(DeviceConfig(id=d, profile=p, params=params),
                          Gbt26875Params(**params), profiles.get(p)) for d, p, params in devices])


async def test_uitd_connects_to_a_late_centre_and_pushes_fire_alarms_at_once(
        profiles: ProfileSet, apoll: Any) -> None:
    port, received = free_port(), Received()
    async with simulators(uitd_document(port), profiles, apoll) as url:
        listener = Gbt26875Listener("127.0.0.1", port, uitd_routes(profiles),
                                    EdgeMetrics("gw-test"))
        async with listening(listener, received):
            await apoll(lambda: received.of("hydrant-01", pipe_pressure=3500), 10,
                        what="the first report of the hydrant main")
            assert received.of("smoke-01", fire_alarm=False, normal=True, state_word=1)
            answer = await fault(url, device=f"uitd-a:{SMOKE}", action="force",
                                 point="fire_alarm", value=True)
            assert answer["device"] == f"uitd-a:{SMOKE}" and answer["values"]["fire_alarm"]
            await apoll(lambda: received.of("smoke-01", fire_alarm=True, state_word=3), 5,
                        what="the fire alarm, pushed by the change")
            await fault(url, device=f"uitd-a:{HYDRANT}", action="mute")
            hydrant_reports = len(received.of("hydrant-01"))
            await fault(url, device=f"uitd-a:{SMOKE}", action="release", point="fire_alarm")
            await apoll(lambda: received.of("smoke-01", fire_alarm=False, state_word=1)[1:], 5,
                        what="the alarm's end")
            assert len(received.of("hydrant-01")) == hydrant_reports  # muted: not sent
        state = await asyncio.to_thread(get_state, url)
    assert state["devices"][f"uitd-a:{HYDRANT}"]["muted"] is True
    assert state["devices"][f"uitd-a:{SMOKE}"]["profile"] == SMOKE_PROFILE


async def test_lorawan_gateways_wait_for_the_server_and_push_a_leak_at_once(
        profiles: ProfileSet, apoll: Any, tmp_path: Path) -> None:
    port, received = free_port(), Received()
    document = {"lorawan": [{"name": "lora-a", "port": port, "keepalive_s": 0.5,
                             "gateways": ["aa555a0000000001", "aa555a0000000002"],
                             "devices": [{"profile": METER_PROFILE, "dev_addr": f"{METER_ADDR:08x}",
                                          "nwk_s_key": NWK, "app_s_key": APP,
                                          "interval_s": SLOW_S}]}]}
    session = Session("meter-1", profiles.get(METER_PROFILE), METER_ADDR, bytes.fromhex(NWK),
                      bytes.fromhex(APP))
    settings = SemtechUdpConfig(kind="semtech_udp", port=port, dedup_window_ms=50,
                                state_path=tmp_path / "lorawan.sqlite")
    async with simulators(document, profiles, apoll) as url:
        await asyncio.sleep(0.3)  # the gateways already knock at a closed port
        listener = SemtechUdpListener(settings, [session], EdgeMetrics("gw-test"))
        async with listening(listener, received):
            await apoll(lambda: received.of("meter-1", leak=False, battery=87), 10,
                        what="the first uplink, with the meter's plausible values")
            await fault(url, device=f"lora-a:{METER_ADDR:08X}", action="force", point="leak",
                        value=True)
            await apoll(lambda: received.of("meter-1", leak=True), 5,
                        what="the leak, pushed by the change")
    assert len(received.of("meter-1")) == 2  # two gateways heard each frame: one reading
