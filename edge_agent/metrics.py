"""Edge agent counters, in Prometheus form (served when `metrics.port` is set).

Poll results and rejected frames are also added to per-gateway totals (edge_agent/stats.py),
which the uplink publishes as `dc.gateway-stats/1`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from edge_agent.stats import Totals, rejected_key


class CountedChild:
    """A labelled Prometheus counter that adds to a gateway total as well."""

    __slots__ = ("_child", "_key", "_totals")

    def __init__(self, child: Counter, totals: Totals, key: str) -> None:
        self._child = child
        self._totals = totals
        self._key = key

    def inc(self, amount: int = 1) -> None:
        self._child.inc(amount)
        self._totals.add(self._key, amount)


class EdgeMetrics:
    """Counters of one edge agent; built at start-up and passed to whoever counts."""

    def __init__(self, gateway: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"gateway": gateway}
        self.poll_totals = Totals()  # by result, summed over devices
        self.rejected_totals = Totals()  # by "protocol:reason"
        self._polls = Counter("dciot_edge_polls", "Device polls by result",
                              ["device", "result"], registry=self.registry)
        self._frames_rejected = Counter(
            "dciot_edge_frames_rejected", "Frames/datagrams rejected, by protocol and reason",
            ["protocol", "reason"], registry=self.registry)
        self.readings_published = Counter(
            "dciot_edge_readings_published", "Readings handed to MQTT", registry=self.registry)
        self.buffered = Gauge("dciot_edge_buffered_readings", "Readings in the disk buffer "
                              "(not yet acknowledged by the broker)", registry=self.registry)
        self.readings_recorded = Gauge(
            "dciot_edge_readings_recorded", "Readings ever committed to this gateway's buffer "
            "(survives restarts)", registry=self.registry)
        self.buffer_bytes = Gauge("dciot_edge_buffer_bytes", "Payload bytes in the disk buffer",
                                  registry=self.registry)
        self.in_flight = Gauge("dciot_edge_in_flight_messages", "Published, not yet acknowledged",
                               registry=self.registry)
        self.replayed = Counter("dciot_edge_readings_replayed", "Backlog readings re-published",
                                registry=self.registry)
        self.buffer_dropped = Counter(
            "dciot_edge_buffer_dropped", "Readings dropped from the disk buffer, by bound",
            ["reason"], registry=self.registry).labels
        self.devices_unreachable = Gauge(
            "dciot_edge_devices_unreachable", "Devices currently unreachable",
            registry=self.registry)
        self.uplink_connected = Gauge(
            "dciot_edge_uplink_connected", "1 while connected to the broker",
            registry=self.registry)
        self.info = Gauge("dciot_edge_info", "Gateway identity", list(labels),
                          registry=self.registry)
        self.info.labels(**labels).set(1)

    def polls(self, device: str, result: str) -> CountedChild:
        """`polls(device=..., result=...).inc()`: one poll and its result."""
        return CountedChild(self._polls.labels(device=device, result=result), self.poll_totals,
                            result)

    def frames_rejected(self, protocol: str, reason: str) -> CountedChild:
        """`frames_rejected(protocol=..., reason=...).inc()`: one frame rejected."""
        return CountedChild(self._frames_rejected.labels(protocol=protocol, reason=reason),
                            self.rejected_totals, rejected_key(protocol, reason))

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics; return the bound port (port 0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
