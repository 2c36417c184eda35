"""The contract every protocol implements, and how it plugs into the agent.

Two shapes of protocol:

- **polled** (Modbus TCP/RTU, CJ/T 188): a `Driver` reads one device instance on request and
  returns *raw* values by point name. The scheduler polls it on the device's interval.
- **pushed** (GB/T 26875.3, LoRaWAN through Semtech UDP or ChirpStack): a `Listener` owns a
  socket, receives frames from many devices and hands each decoded reading to a `ReadingSink`.

Scaling happens once, in edge_agent/scaling.py, for both. Drivers raise
edge_agent.errors.TransportError (or a subclass) when a device cannot be read and FrameError when
its answer cannot be decoded. Listeners never raise for bad input: they count the rejected frame
(`EdgeMetrics.frames_rejected(protocol=..., reason=...)`), log it (throttled) and go on.

A protocol plugs in with a `ProtocolPlugin` listed in edge_agent/protocols/__init__.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from device_profiles.schema import Profile
    from edge_agent.config import DeviceConfig
    from edge_agent.metrics import EdgeMetrics
    from edge_agent.protocols import BusPool

Raw = bool | int | float


class Driver(Protocol):
    async def read(self) -> dict[str, Raw]:
        """Read every point of the device once."""
        ...


class Bus(Protocol):
    """A shared medium (one TCP connection, one serial port) that devices take turns on."""

    async def close(self) -> None: ...


# device id, raw values by point name, the device's own timestamp in epoch ms (None: now)
ReadingSink = Callable[[str, dict[str, Raw], int | None], None]


class Listener(Protocol):
    async def run(self, sink: ReadingSink) -> None:
        """Receive until cancelled, handing every decoded reading to `sink`."""
        ...


@dataclass(frozen=True)
class ListenerContext:
    """What a listener factory gets: its validated config entry, the devices it serves (with
    their validated params and profiles) and the metrics to count with."""

    config: BaseModel
    devices: list[tuple[DeviceConfig, BaseModel | None, Profile]]
    metrics: EdgeMetrics
    state_dir: Path | None = None  # beside the edge buffer: where a listener keeps its state


DriverFactory = Callable[["DeviceConfig", "BaseModel | None", "Profile", "BusPool"], Driver]


@dataclass(frozen=True)
class ProtocolPlugin:
    """How one profile protocol kind plugs in.

    `params_model` validates a device instance's `params:` (None: the protocol takes none).
    Polled protocols give `create_driver`; pushed ones are served by listeners that name the
    kind in `serves`.
    """

    kind: str
    params_model: type[BaseModel] | None = None
    create_driver: DriverFactory | None = None
    # start-up checks over all devices of this kind, e.g. an over-subscribed RS-485 bus
    check_devices: Callable[[list[Any]], list[str]] | None = None


@dataclass(frozen=True)
class ListenerPlugin:
    """A socket that receives pushed frames: `kind` is what `listeners:` entries name."""

    kind: str
    serves: frozenset[str]
    config_model: type[BaseModel]
    create: Callable[[ListenerContext], Listener]
    # what a generated gateway config starts from (None: needs site facts, e.g. a broker)
    default_entry: Mapping[str, object] | None = None


def validate_params(model: type[BaseModel] | None, params: dict[str, Any], where: str
                    ) -> BaseModel | None:
    """Validate a device's protocol params; raise ValueError naming the device."""
    if model is None:
        if params:
            raise ValueError(f"{where}: this protocol takes no params, got {sorted(params)}")
        return None
    return model.model_validate(params)
