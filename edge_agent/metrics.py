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
        self.readings_published = Counter(
            "dciot_edge_readings_published", "Readings handed to MQTT", registry=self.registry)
        self.publish_dropped = Counter(
            "dciot_edge_publish_dropped", "Readings dropped before publishing, by reason",
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
