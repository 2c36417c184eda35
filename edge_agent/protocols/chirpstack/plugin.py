"""ChirpStack plugs into the agent as the `chirpstack_mqtt` listener for `lorawan` devices.

It serves the `lorawan` devices whose params give `dev_eui` alone: those are ChirpStack's,
while ABP (`dev_addr` + keys) and OTAA (`dev_eui` + `app_key`) devices are received from
gateways by `semtech_udp`.
"""

from __future__ import annotations

from edge_agent.errors import ConfigError
from edge_agent.protocols.base import ListenerContext, ListenerPlugin
from edge_agent.protocols.chirpstack.config import ChirpstackMqttConfig
from edge_agent.protocols.chirpstack.listener import ChirpstackDevice, ChirpstackListener
from edge_agent.protocols.semtech_udp.config import LorawanParams


def _create(ctx: ListenerContext) -> ChirpstackListener:
    settings = ctx.config
    assert isinstance(settings, ChirpstackMqttConfig)
    devices: dict[str, ChirpstackDevice] = {}
    for device, params, profile in ctx.devices:
        if (not isinstance(params, LorawanParams) or params.abp or params.otaa
                or params.dev_eui is None):
            continue
        dev_eui = params.dev_eui.lower()
        if dev_eui in devices:
            raise ConfigError(f"devices {devices[dev_eui].device_id} and {device.id} have the "
                              f"same dev_eui {dev_eui}")
        devices[dev_eui] = ChirpstackDevice(device.id, dev_eui, profile)
    settings.password()  # a missing password variable stops start-up here
    return ChirpstackListener(settings, list(devices.values()), ctx.metrics)


LISTENER = ListenerPlugin(kind="chirpstack_mqtt", serves=frozenset({"lorawan"}),
                          config_model=ChirpstackMqttConfig, create=_create)
