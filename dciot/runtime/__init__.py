"""Real mosquitto and influxd processes on free loopback ports, for the demo and tests."""

from dciot.runtime.influxd import InfluxError, InfluxServer
from dciot.runtime.mosquitto import MosquittoServer, TlsListener
from dciot.runtime.ports import free_port, free_ports
from dciot.runtime.process import (
    ManagedProcess,
    MissingBinaryError,
    StartupError,
    find_binary,
)

__all__ = [
    "InfluxError",
    "InfluxServer",
    "ManagedProcess",
    "MissingBinaryError",
    "MosquittoServer",
    "StartupError",
    "TlsListener",
    "find_binary",
    "free_port",
    "free_ports",
]
