"""Edge agent counters, in Prometheus form (served when `metrics.port` is set)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class EdgeMetrics:
    """Counters of one edge agent; built at start-up and passed to whoever counts."""

    def __init__(self, gateway: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"gateway": gateway}
        self.polls = Counter("dciot_edge_polls", "Device polls by result", ["device", "result"],
                             registry=self.registry).labels
        self.frames_rejected = Counter(
            "dciot_edge_frames_rejected", "Frames/datagrams rejected, by protocol and reason",
            ["protocol", "reason"], registry=self.registry).labels
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

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics; return the bound port (port 0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
