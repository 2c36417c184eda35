"""Exceptions of the simulators.

    SimError
    ├── SimConfigError   the simulator config is invalid (start-up stops)
    ├── ListenError      a server could not listen on its host:port (start-up stops)
    ├── FaultError       a control request names an unknown device, point, state or action,
    │                    or a value the register cannot hold (HTTP 400)
    └── ControlError     the control API answered a client with an error status
"""

from __future__ import annotations


class SimError(Exception):
    """Base of every simulator error."""


class SimConfigError(SimError):
    """The simulator config is invalid; `problems` lists every error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class ListenError(SimError):
    """A Modbus or control server could not listen on its host:port."""


class FaultError(SimError):
    """A fault request that cannot be applied."""


class ControlError(SimError):
    """The control API answered with an error; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {message}")
