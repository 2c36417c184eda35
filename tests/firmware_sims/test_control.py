"""The control API over real HTTP: state, force/release, set_state, mute, and 400s."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from device_profiles.schema import ProfileSet
from edge_agent.protocols.modbus.codec import decode_point
from edge_agent.scaling import to_engineering
from firmware_sims.control import get_state, send_fault
from firmware_sims.errors import ControlError

PUMP = "dc-pumpstation-v1"
POLE = "dc-smartpole-v1"
PUMP_INITIAL = {"sump_level": 2.75, "pump1_running": False}


@pytest.fixture
def sim_document() -> dict[str, Any]:
    return {"physics": False, "servers": [
        {"units": [{"unit": 1, "profile": PUMP, "initial": PUMP_INITIAL}]},
        {"units": [{"unit": 1, "profile": POLE}, {"unit": 2, "profile": POLE}]},
    ]}


async def fault(sims: Any, **fields: Any) -> dict[str, Any]:
    return await asyncio.to_thread(send_fault, sims.control_url, **fields)


async def read_level(port: int, profiles: ProfileSet) -> float:
    point = profiles.get(PUMP).point("sump_level")
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    await client.connect()
    try:
        response = await client.read_input_registers(point.address, count=2, device_id=1)
    finally:
        client.close()
    return float(to_engineering(point, decode_point(point, point.address, response.registers)))


async def test_state_lists_every_device(sims: Any, profiles: ProfileSet) -> None:
    state = await asyncio.to_thread(get_state, sims.control_url)
    pump_port, pole_port = sims.ports
    assert set(state["devices"]) == {f"{pump_port}:1", f"{pole_port}:1", f"{pole_port}:2"}
    pump = state["devices"][f"{pump_port}:1"]
    assert pump["profile"] == PUMP and pump["muted"] is False and pump["forced"] == {}
    assert set(pump["values"]) == {p.name for p in profiles.get(PUMP).points}
    assert pump["values"]["sump_level"] == 2.75
    assert state["time"].endswith("+08:00")


async def test_force_then_release_changes_what_clients_read(sims: Any,
                                                            profiles: ProfileSet) -> None:
    port = sims.ports[0]
    answer = await fault(sims, port=port, unit=1, action="force", point="sump_level",
                         value=4.9)
    assert answer["device"] == f"{port}:1"
    assert answer["values"]["sump_level"] == 4.9 and answer["forced"] == {"sump_level": 4.9}
    assert await read_level(port, profiles) == 4.9
    answer = await fault(sims, port=port, unit=1, action="release", point="sump_level")
    assert answer["values"]["sump_level"] == 2.75 and answer["forced"] == {}
    assert await read_level(port, profiles) == 2.75


async def test_set_state_and_release_all(sims: Any) -> None:
    port = sims.ports[0]
    answer = await fault(sims, port=port, unit=1, action="set_state", point="sump_level",
                         value=3.3)
    assert answer["values"]["sump_level"] == 3.3
    await fault(sims, port=port, unit=1, action="force", point="pump1_fault", value=True)
    await fault(sims, port=port, unit=1, action="force", point="fault_code", value=12)
    answer = await fault(sims, port=port, unit=1, action="release_all")
    assert answer["forced"] == {} and answer["values"]["fault_code"] == 0


async def test_mute_and_unmute_show_in_state(sims: Any) -> None:
    pole_port = sims.ports[1]
    answer = await fault(sims, port=pole_port, unit=2, action="mute")
    assert answer["muted"] is True
    state = await asyncio.to_thread(get_state, sims.control_url)
    assert state["devices"][f"{pole_port}:2"]["muted"] is True
    assert state["devices"][f"{pole_port}:1"]["muted"] is False
    answer = await fault(sims, port=pole_port, unit=2, action="unmute")
    assert answer["muted"] is False


@pytest.mark.parametrize(("fields", "message"), [
    ({"port": 1, "unit": 1, "action": "mute"}, "no simulated device 1:1"),
    ({"port": "15020", "action": "mute"}, "port must be an integer"),
    ({"action": "explode"}, "unknown action 'explode'"),
    ({"action": "force", "point": "nope", "value": 1}, "has no point 'nope'"),
    ({"action": "force", "point": "sump_level"}, "action force needs value"),
    ({"action": "release"}, "action release needs point"),
    ({"action": "force", "point": "fault_code", "value": -3}, "-3 does not fit fault_code"),
    ({"action": "force", "point": "sump_level", "value": "high"}, "takes a number"),
    ({"action": "set_state", "point": "flow", "value": 1}, "has no state 'flow'"),
    ({"action": "set_state", "point": "sump_level", "value": 9}, "within 0..5.5"),
    ({"action": "mute", "colour": "red"}, "unknown field(s) colour"),
], ids=lambda v: v if isinstance(v, str) else None)
async def test_bad_fault_requests_get_400(sims: Any, fields: dict[str, Any],
                                          message: str) -> None:
    request = {"port": sims.ports[0], "unit": 1, **fields}
    with pytest.raises(ControlError) as caught:
        await fault(sims, **request)
    assert caught.value.status == 400
    assert message in str(caught.value)


async def test_a_device_can_be_named_instead_of_port_and_unit(sims: Any) -> None:
    pole_port = sims.ports[1]
    answer = await fault(sims, device=f"{pole_port}:2", action="mute")
    assert answer["device"] == f"{pole_port}:2" and answer["muted"] is True
    for fields, message in [
        ({"device": f"{pole_port}:2", "port": pole_port, "unit": 2}, "not both"),
        ({"device": 2}, "device must be a string"),
        ({"device": "rtu-x:1"}, "no simulated device rtu-x:1"),
    ]:
        with pytest.raises(ControlError, match=message):
            await fault(sims, **fields, action="unmute")


def _raw(url: str, method: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize(("path", "method", "body", "status"), [
    ("/fault", "POST", b"{not json", 400),
    ("/fault", "POST", b"[1, 2]", 400),
    ("/nope", "GET", None, 404),
    ("/state", "POST", b"{}", 405),
    ("/fault", "GET", None, 405),
], ids=["bad-json", "not-an-object", "unknown-path", "post-state", "get-fault"])
async def test_malformed_http_requests(sims: Any, path: str, method: str, body: bytes | None,
                                       status: int) -> None:
    got, answer = await asyncio.to_thread(_raw, sims.control_url + path, method, body)
    assert got == status
    assert answer["error"]
