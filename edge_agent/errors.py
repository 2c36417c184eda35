"""Exceptions of the edge agent.

    EdgeError
    ├── ConfigError          the gateway config is invalid (startup stops)
    ├── FrameError           bytes/registers that cannot be decoded (codec)
    └── TransportError       the device could not be reached
        ├── DeviceTimeout    no answer in time
        └── DeviceException  the device answered with a Modbus exception code
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every edge agent error."""


class ConfigError(EdgeError):
    """The gateway config is invalid."""


class FrameError(EdgeError):
    """Data that cannot be decoded or encoded."""


class TransportError(EdgeError):
    """The device could not be reached or did not answer."""


class DeviceTimeout(TransportError):
    """No answer within the timeout."""


class DeviceException(TransportError):
    """The device answered with a Modbus exception code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
