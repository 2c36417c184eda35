"""Free loopback ports for locally started servers."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on `host` a moment ago (bind to port 0, read, close).

    Another process may take it before the caller binds it; callers that start a server
    on it detect that at start-up (see `ManagedProcess.start`).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free on `host` a moment ago: all are held open while they are
    picked, so no two are the same (separate `free_port` calls may repeat a port)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_bindable(host: str, port: int) -> bool:
    """True if we could listen on host:port now (SO_REUSEADDR, like mosquitto and influxd).

    With SO_REUSEADDR a port left in TIME_WAIT by a stopped server counts as free, so a
    restart on the same port is not refused.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def can_connect(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True if a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
