"""Protocol registry: profile protocol kind -> plugin, listener kind -> listener plugin.

Adding a protocol means one folder under edge_agent/protocols/ (codec, transport, driver or
listener, README, sample config, `plugin.py`) and one line here. Plugins are imported lazily,
so a protocol's dependencies load only when a gateway uses it.
"""

from __future__ import annotations

import importlib

from device_profiles.schema import Profile
from edge_agent.protocols.base import Bus, Driver, ListenerPlugin, ProtocolPlugin

PROTOCOLS: dict[str, str] = {
    "modbus_tcp": "edge_agent.protocols.modbus.plugin:MODBUS_TCP",
    "modbus_rtu": "edge_agent.protocols.modbus.plugin:MODBUS_RTU",
    "cjt188": "edge_agent.protocols.cjt188.plugin:PLUGIN",
    "gbt26875": "edge_agent.protocols.gbt26875.plugin:PLUGIN",
    "lorawan": "edge_agent.protocols.semtech_udp.plugin:LORAWAN",
}

LISTENERS: dict[str, str] = {
    "gbt26875": "edge_agent.protocols.gbt26875.plugin:LISTENER",
    "semtech_udp": "edge_agent.protocols.semtech_udp.plugin:LISTENER",
    "chirpstack_mqtt": "edge_agent.protocols.chirpstack.plugin:LISTENER",
}


def _load(path: str) -> object:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def protocol_plugin(kind: str) -> ProtocolPlugin:
    if kind not in PROTOCOLS:
        raise KeyError(f"no protocol {kind!r}; known: {', '.join(sorted(PROTOCOLS))}")
    plugin = _load(PROTOCOLS[kind])
    assert isinstance(plugin, ProtocolPlugin)
    return plugin


def listener_plugin(kind: str) -> ListenerPlugin:
    if kind not in LISTENERS:
        raise KeyError(f"no listener {kind!r}; known: {', '.join(sorted(LISTENERS))}")
    plugin = _load(LISTENERS[kind])
    assert isinstance(plugin, ListenerPlugin)
    return plugin


class BusPool:
    """Shares one bus per medium (one TCP connection per Modbus gateway, one serial port).

    `metrics` (the agent's EdgeMetrics) lets a bus count rejected frames by reason.
    """

    def __init__(self, metrics: object | None = None) -> None:
        self.metrics = metrics
        self.buses: dict[tuple[str, ...], Bus] = {}

    async def close(self) -> None:
        for bus in self.buses.values():
            await bus.close()
        self.buses.clear()


def create_driver(device: object, params: object, profile: Profile, pool: BusPool) -> Driver:
    """Build the driver of one polled device instance from its profile's protocol kind."""
    plugin = protocol_plugin(profile.protocol.kind)
    if plugin.create_driver is None:
        raise KeyError(f"protocol {plugin.kind} is pushed, not polled: configure a listener")
    return plugin.create_driver(device, params, profile, pool)  # type: ignore[arg-type]
