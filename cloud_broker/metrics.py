"""Cloud service counters in Prometheus form, plus presence gauges computed at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from cloud_broker.presence import Presence


class CloudMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.received = Counter("dciot_ingest_messages_received", "MQTT messages received",
                                ["kind"], registry=r).labels
        self.readings_accepted = Counter("dciot_ingest_readings_accepted",
                                         "Readings that passed validation", registry=r)
        self.points_written = Counter("dciot_ingest_points_written",
                                      "Reading points written to InfluxDB", registry=r)
        self.rejected = Counter("dciot_ingest_rejected", "Messages rejected, by reason",
                                ["reason"], registry=r).labels
        self.write_retries = Counter("dciot_ingest_write_retries", "Failed InfluxDB writes "
                                     "that will be retried", registry=r)
        self.write_seconds = Histogram("dciot_ingest_write_seconds", "InfluxDB write latency",
                                       registry=r)
        self.lag = Gauge("dciot_ingest_consumer_lag_seconds", "Age of the oldest reading in "
                         "the last batch written (grows while a backlog is replayed)", registry=r)
        self.pending = Gauge("dciot_ingest_pending_messages", "Messages received but not yet "
                             "written and acknowledged", registry=r)
        self.alarms = Counter("dciot_alarms", "Alarm events, by state and severity",
                              ["state", "severity"], registry=r).labels
        self.edge_reported_drops = Gauge(
            "dciot_edge_reported_drops", "Readings a gateway reports it dropped from its disk "
            "buffer (total since its buffer began)", ["gateway"], registry=r)
        self.edge_backlog = Gauge("dciot_edge_reported_backlog", "Readings a gateway reports "
                                  "waiting in its disk buffer", ["gateway"], registry=r)
        self.alarms_active = Gauge("dciot_alarms_active", "Alarms currently active", registry=r)

    def watch_presence(self, presence: Presence) -> None:
        self.registry.register(_PresenceCollector(presence))

    def serve(self, host: str, port: int) -> int:
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)


class _PresenceCollector(Collector):
    def __init__(self, presence: Presence) -> None:
        self.presence = presence

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.presence.snapshot()
        gw = GaugeMetricFamily("dciot_gateways_online", "Gateways whose last status is online")
        gw.add_metric([], snap.gateways_online)
        yield gw
        online = GaugeMetricFamily("dciot_devices_online", "Devices reporting in time",
                                   labels=["domain"])
        known = GaugeMetricFamily("dciot_devices_known", "Registered devices", labels=["domain"])
        unreachable = GaugeMetricFamily("dciot_devices_unreachable",
                                        "Devices their gateway reports unreachable",
                                        labels=["domain"])
        for domain, count in sorted(snap.known.items()):
            known.add_metric([domain], count)
            online.add_metric([domain], snap.online.get(domain, 0))
            unreachable.add_metric([domain], snap.unreachable.get(domain, 0))
        yield online
        yield known
        yield unreachable
