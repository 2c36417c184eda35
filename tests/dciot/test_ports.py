"""Picking loopback ports for the servers a run starts."""

from __future__ import annotations

import socket

from dciot.runtime import free_ports


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(40)
    assert len(set(ports)) == 40
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
