"""LoRaWAN plugs into the agent: the `lorawan` profile kind (pushed, no driver) with its device
params, and the `semtech_udp` listener that LoRa gateways' packet forwarders send to."""

from __future__ import annotations

from edge_agent.errors import ConfigError
from edge_agent.protocols.base import ListenerContext, ListenerPlugin, ProtocolPlugin
from edge_agent.protocols.semtech_udp.config import LorawanParams, SemtechUdpConfig
from edge_agent.protocols.semtech_udp.listener import SemtechUdpListener, Session
from edge_agent.protocols.semtech_udp.otaa import OtaaDevice


def _create(ctx: ListenerContext) -> SemtechUdpListener:
    """ABP and OTAA devices are served; dev_eui-only devices are ChirpStack's."""
    settings = ctx.config
    assert isinstance(settings, SemtechUdpConfig)
    if settings.state_path is None and ctx.state_dir is not None:
        # frame counters survive a restart by default: replays stay rejected
        settings = settings.model_copy(
            update={"state_path": ctx.state_dir / "lorawan-state.sqlite"})
    sessions: list[Session] = []
    otaa: list[OtaaDevice] = []
    for device, params, profile in ctx.devices:
        if not isinstance(params, LorawanParams):
            continue
        try:
            if params.abp:
                nwk, app = params.session_keys()
                sessions.append(Session(device.id, profile, int(params.dev_addr or "0", 16),
                                        nwk, app))
            elif params.otaa:
                otaa.append(OtaaDevice(device.id, profile, (params.dev_eui or "").lower(),
                                       params.root_key(), params.app_eui))
        except ConfigError as err:
            raise ConfigError(f"device {device.id}: {err}") from err
    euis = [d.dev_eui for d in otaa]
    if len(set(euis)) != len(euis):
        raise ConfigError(f"OTAA devices share a dev_eui: {sorted(euis)}")
    return SemtechUdpListener(settings, sessions, ctx.metrics, otaa)


LORAWAN = ProtocolPlugin(kind="lorawan", params_model=LorawanParams)
LISTENER = ListenerPlugin(kind="semtech_udp", serves=frozenset({"lorawan"}),
                          config_model=SemtechUdpConfig, create=_create,
                          default_entry={"kind": "semtech_udp", "host": "0.0.0.0", "port": 1700})
