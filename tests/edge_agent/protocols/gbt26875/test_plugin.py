"""The gbt26875 plugin: device params, listener settings, routes, and wiring from a gateway
config (including the package's sample.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from device_profiles.schema import load_profiles
from edge_agent.config import GatewayConfig
from edge_agent.errors import ConfigError
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols import listener_plugin, protocol_plugin
from edge_agent.protocols.base import ListenerContext
from edge_agent.protocols.gbt26875.listener import Gbt26875Listener, Route
from edge_agent.protocols.gbt26875.plugin import (
    Gbt26875ListenerConfig,
    Gbt26875Params,
    build_routes,
)
from edge_agent.wiring import wire

SAMPLE = Path(__file__).parents[4] / "edge_agent" / "protocols" / "gbt26875" / "sample.yaml"
SMOKE = {"uitd_address": "000000000379", "system_address": 1, "component_type": 42,
         "component_address": 131082}


def _gateway(devices: list[dict[str, Any]], listeners: list[dict[str, Any]]) -> GatewayConfig:
    return GatewayConfig.model_validate({"gateway_id": "gw-fire", "devices": devices,
                                         "listeners": listeners})


def test_registered_as_a_pushed_protocol_with_a_listener() -> None:
    assert protocol_plugin("gbt26875").create_driver is None
    assert listener_plugin("gbt26875").serves == frozenset({"gbt26875"})


@pytest.mark.parametrize(("change", "message"), [
    pytest.param({"uitd_address": "379"}, "String should match pattern", id="short-address"),
    pytest.param({"component_address": None}, "go together", id="type-without-address"),
    pytest.param({"component_address": 2**32}, "less than or equal", id="address-too-big"),
    pytest.param({"unit": 1}, "Extra inputs", id="unknown-param"),
])
def test_bad_params_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Gbt26875Params(**{**SMOKE, **change})


def test_listener_defaults() -> None:
    settings = Gbt26875ListenerConfig(kind="gbt26875", port=9527)
    assert (settings.host, settings.idle_timeout_s, settings.utc_offset_h) == (
        "127.0.0.1", 90.0, 8.0)


def test_gateway_config_wires_devices_to_the_listener() -> None:
    config = _gateway(
        [{"id": "smoke-01", "profile": "dc-smokedetector-v1", "params": SMOKE},
         {"id": "fas-01", "profile": "dc-fire-controller-v1",
          "params": {"uitd_address": "000000000379", "system_address": 1}}],
        [{"kind": "gbt26875", "port": 0, "idle_timeout_s": 5}])
    wiring = wire(config, load_profiles())
    assert wiring.polled == []
    ((plugin, settings, devices),) = wiring.listeners
    assert [d.id for d, _p, _profile in devices] == ["smoke-01", "fas-01"]
    listener = plugin.create(ListenerContext(settings, devices, EdgeMetrics("gw-fire")))
    assert isinstance(listener, Gbt26875Listener) and listener.idle_timeout_s == 5
    routes = listener.routes[0x379]
    assert routes[(1, 1, 42, 131082)].device_id == "smoke-01"
    assert routes[(1, 1, None, None)].device_id == "fas-01"  # the system itself


def test_pushed_devices_without_a_listener_and_bad_params_are_config_errors() -> None:
    device = {"id": "smoke-01", "profile": "dc-smokedetector-v1", "params": SMOKE}
    with pytest.raises(ConfigError, match="add a listener"):
        wire(_gateway([device], []), load_profiles())
    bad = {**device, "params": {**SMOKE, "uitd_address": "nope"}}
    with pytest.raises(ConfigError, match="uitd_address"):
        wire(_gateway([bad], [{"kind": "gbt26875", "port": 0}]), load_profiles())


def test_two_devices_on_one_component_are_refused() -> None:
    config = _gateway([{"id": d, "profile": "dc-smokedetector-v1", "params": SMOKE}
                       for d in ("smoke-01", "smoke-02")], [{"kind": "gbt26875", "port": 0}])
    ((_plugin, _settings, devices),) = wire(config, load_profiles()).listeners
    with pytest.raises(ConfigError, match="smoke-01 and smoke-02"):
        build_routes(devices)


def test_routes_list_each_point_with_its_field() -> None:
    config = _gateway([{"id": "hydrant-01", "profile": "dc-hydrant-pressure-v1", "params": {
        "uitd_address": "000000000379", "system_type": 11, "system_address": 1,
        "component_type": 0, "component_address": 7}}], [{"kind": "gbt26875", "port": 0}])
    ((_plugin, _settings, devices),) = wire(config, load_profiles()).listeners
    assert build_routes(devices) == {0x379: {(11, 1, 0, 7): Route("hydrant-01", (
        ("pipe_pressure", "analog_pressure_kpa"), ("fault", "fault")))}}


def test_sample_config_is_valid() -> None:
    sample = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    config = _gateway(sample["devices"], sample["listeners"])
    ((_plugin, settings, devices),) = wire(config, load_profiles()).listeners
    assert isinstance(settings, Gbt26875ListenerConfig)
    assert len(build_routes(devices)[0x379]) == len(sample["devices"])
