"""Exceptions of the edge agent.

    EdgeError
    ├── ConfigError          the gateway config is invalid (startup stops)
    ├── FrameError           bytes/registers that cannot be decoded (codec)
    │   └── RejectedFrame    ... with a metric `reason` and the byte `offset` it was found at
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


class RejectedFrame(FrameError):
    """Input a codec rejects: `reason` is a short snake_case metric label, `offset` the byte
    where the problem was found. Protocols subclass it to name their own errors."""

    def __init__(self, reason: str, offset: int, detail: str) -> None:
        super().__init__(f"{reason} at byte {offset}: {detail}")
        self.reason = reason
        self.offset = offset


class TransportError(EdgeError):
    """The device could not be reached or did not answer."""


class DeviceTimeout(TransportError):
    """No answer within the timeout."""


class DeviceException(TransportError):
    """The device answered with a Modbus exception code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
