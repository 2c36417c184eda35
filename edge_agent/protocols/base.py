"""The driver contract every protocol implements.

A driver reads one device instance and returns *raw* values by point name; scaling happens
once, in edge_agent/scaling.py. Drivers raise edge_agent.errors.TransportError (or a subclass)
when the device cannot be read, and FrameError when its answer cannot be decoded.
"""

from __future__ import annotations

from typing import Protocol

Raw = bool | int | float


class Driver(Protocol):
    async def read(self) -> dict[str, Raw]:
        """Read every point of the device once."""
        ...


class Bus(Protocol):
    """A shared medium (one TCP connection, one serial port) that devices take turns on."""

    async def close(self) -> None: ...
