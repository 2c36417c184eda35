"""Resolves a gateway config against the protocol registry: which devices are polled by which
driver, which listeners receive which pushed devices. Every problem is a ConfigError."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from device_profiles.schema import Profile, ProfileSet
from edge_agent.config import DeviceConfig, GatewayConfig
from edge_agent.errors import ConfigError
from edge_agent.protocols import listener_plugin, protocol_plugin
from edge_agent.protocols.base import ListenerPlugin, validate_params

Instance = tuple[DeviceConfig, BaseModel | None, Profile]


@dataclass
class Wiring:
    polled: list[Instance] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    listeners: list[tuple[ListenerPlugin, BaseModel, list[Instance]]] = field(default_factory=list)


def _device_instance(device: DeviceConfig, profile: Profile) -> Instance:
    try:
        plugin = protocol_plugin(profile.protocol.kind)
        params = validate_params(plugin.params_model, device.params, f"device {device.id}")
    except (KeyError, ImportError, ValueError) as err:
        detail = err if not isinstance(err, ValidationError) else "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"device {device.id} ({profile.protocol.kind}): {detail}") from err
    return device, params, profile


def wire(config: GatewayConfig, profiles: ProfileSet) -> Wiring:
    wiring = Wiring()
    pushed: dict[str, list[Instance]] = {}
    for device in config.devices:
        instance = _device_instance(device, profiles.get(device.profile))
        kind = instance[2].protocol.kind
        if protocol_plugin(kind).create_driver is not None:
            wiring.polled.append(instance)
        else:
            pushed.setdefault(kind, []).append(instance)
    served: set[str] = set()
    for entry in config.listeners:
        try:
            plugin = listener_plugin(entry.kind)
            settings = plugin.config_model.model_validate(entry.model_dump())
        except (KeyError, ImportError, ValidationError) as err:
            raise ConfigError(f"listener {entry.kind}: {err}") from err
        devices = [i for kind in sorted(plugin.serves) for i in pushed.get(kind, [])]
        wiring.listeners.append((plugin, settings, devices))
        served |= plugin.serves
    for kind in sorted({i[2].protocol.kind for i in wiring.polled}):
        check = protocol_plugin(kind).check_devices
        if check is not None:
            wiring.warnings += check([i for i in wiring.polled if i[2].protocol.kind == kind])
    unserved = sorted(set(pushed) - served)
    if unserved:
        raise ConfigError(f"devices speak {', '.join(unserved)}, which is pushed: add a "
                          f"listener for it under `listeners:`")
    return wiring
