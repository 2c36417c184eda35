"""The ingest: MQTT in (persistent session, manual acks) -> validate -> rules -> InfluxDB.

Threads: paho's network thread decodes each message, runs the rules and appends its lines and
its ack to the pending batch; the flusher thread writes the batch and only then acknowledges
every message in it, in arrival order. A QoS 1 reading is therefore acknowledged to the broker
only after InfluxDB holds it; if the ingest dies first the broker redelivers it (and the
redelivery overwrites the same point). Rejected messages are acknowledged with their batch so
acks stay in order. Two ticker threads add lines of their own to the batch: the rules tick
(silence, pending durations) and the health tick (health.py, every `health_interval_s`).
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_broker.config import CloudConfig
from cloud_broker.events.outbox import Outbox
from cloud_broker.ingest import points
from cloud_broker.ingest.decode import Rejected, decode_readings
from cloud_broker.ingest.edge_stats import decode_gateway_stats
from cloud_broker.ingest.health import HealthReporter, TickStats
from cloud_broker.ingest.state_changes import StateChanges
from cloud_broker.ingest.writer import InfluxWriter, WriteError
from cloud_broker.logthrottle import ThrottledLog
from cloud_broker.metrics import CloudMetrics
from cloud_broker.presence import Presence
from cloud_broker.registry.devices import DeviceCatalogue
from cloud_broker.rules.engine import AlarmEvent, RuleEngine
from cloud_broker.rules.notify import publish_ack_result, publish_alarm
from edge_agent.uplink import contract

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    lines: list[str] = field(default_factory=list)
    acks: list[tuple[int, int]] = field(default_factory=list)  # (mid, qos)
    readings: int = 0
    started: float = 0.0
    oldest_ts: int | None = None  # oldest reading timestamp in the batch (for the lag)


class IngestService:
    def __init__(self, config: CloudConfig, catalogue: DeviceCatalogue, writer: InfluxWriter,
                 engine: RuleEngine, presence: Presence, metrics: CloudMetrics,
                 outbox: Outbox | None = None) -> None:
        self.config = config
        self.catalogue = catalogue
        self.writer = writer
        self.engine = engine
        self.presence = presence
        self.metrics = metrics
        self.outbox = outbox
        self.connected = threading.Event()
        self._throttled = ThrottledLog(log)
        self._cond = threading.Condition()
        self._batch = _Batch()
        self._stopping = threading.Event()
        self._writing = 0  # acks of the batch the flusher is writing
        self._client: mqtt.Client | None = None
        self._flusher: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._health_ticker: threading.Thread | None = None
        self.tick_stats = TickStats()
        self.health = HealthReporter(catalogue, presence, self.tick_stats)
        self._state_changes = StateChanges()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        broker = self.config.broker
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=broker.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if broker.username:
            client.username_pw_set(broker.username, broker.password())
        if broker.tls_cafile is not None:
            client.tls_set(ca_certs=str(broker.tls_cafile),
                           certfile=str(broker.tls_certfile) if broker.tls_certfile else None,
                           keyfile=str(broker.tls_keyfile) if broker.tls_keyfile else None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(1, max(1, int(broker.reconnect_max_s)))
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = broker.session_expiry_s
        props.ReceiveMaximum = broker.receive_maximum
        self._client = client
        self._flusher = threading.Thread(target=self._flush_loop, name="ingest-flush",
                                         daemon=True)
        self._flusher.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="rules-tick", daemon=True)
        self._ticker.start()
        self._health_ticker = threading.Thread(target=self._health_loop, name="health-tick",
                                               daemon=True)
        self._health_ticker.start()
        if self.outbox is not None:
            self.outbox.start()
        client.connect_async(broker.host, broker.port, keepalive=30, clean_start=False,
                             properties=props)
        client.loop_start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write and acknowledge what is pending, then disconnect (the session stays)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._flusher is not None:
            self._flusher.join(timeout_s)
        for ticker in (self._ticker, self._health_ticker):
            if ticker is not None:
                ticker.join(timeout_s)
        if self.outbox is not None:
            self.outbox.stop()
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        self.writer.close()

    # --- MQTT callbacks (paho network thread) ------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: object, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, _p: Properties | None) -> None:
        if reason.is_failure:
            log.error("broker refused the ingest connection: %s", reason)
            return
        _no_delay(client)
        client.subscribe([(contract.READINGS_SUBSCRIPTION, 1),
                          (contract.GATEWAY_STATUS_SUBSCRIPTION, 1),
                          (contract.DEVICE_STATUS_SUBSCRIPTION, 1),
                          (contract.BUFFER_STATUS_SUBSCRIPTION, 1),
                          (contract.GATEWAY_STATS_SUBSCRIPTION, 1),
                          (contract.ALARM_ACK_TOPIC, 1)])
        self.connected.set()
        log.info("ingest connected (session present: %s)", flags.session_present)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode,
                       _p: Properties | None) -> None:
        if self.connected.is_set() and not self._stopping.is_set():
            log.warning("ingest disconnected from broker: %s (will reconnect)", reason)
        self.connected.clear()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        lines: list[str] = []
        readings = 0
        oldest: int | None = None
        ref = contract.parse_gateway_topic(msg.topic)
        self.metrics.received(kind=ref.kind if ref else "unknown").inc()
        self.tick_stats.message()
        if ref is not None:
            self.presence.gateway_seen(ref.gateway)
        try:
            if msg.topic == contract.ALARM_ACK_TOPIC:
                self._acknowledge(msg.payload)
            elif ref is None:
                raise Rejected("bad_topic", f"topic {msg.topic[:120]!r} is outside the namespace")
            elif ref.kind == "readings":
                lines, readings, oldest = self._readings(ref, msg.payload)
            elif ref.kind == "stats":
                lines = self._gateway_stats(ref, msg.payload)
            else:
                lines = self._status(ref, msg.payload)
        except Rejected as err:
            self._rejected(err.reason)
            self._throttled.warning(err.reason, f"rejected message on {msg.topic[:120]!r}: {err}")
        except Exception:  # a bug must not kill paho's thread: count it, keep the stream going
            self._rejected("internal_error")
            log.exception("internal error on a message on %r", msg.topic[:120])
        self._enqueue(lines, (msg.mid, msg.qos), readings, oldest)

    def _enqueue(self, lines: list[str], ack: tuple[int, int] | None = None, readings: int = 0,
                 oldest: int | None = None) -> None:
        """Add to the pending batch (any thread); the flusher writes it within max_delay_ms."""
        if not lines and ack is None:
            return
        with self._cond:
            batch = self._batch
            if not batch.acks and not batch.lines:
                batch.started = time.monotonic()
            batch.lines.extend(lines)
            if ack is not None:
                batch.acks.append(ack)
            batch.readings += readings
            if oldest is not None and (batch.oldest_ts is None or oldest < batch.oldest_ts):
                batch.oldest_ts = oldest
            self.metrics.pending.set(self._writing + len(batch.acks))
            if len(batch.lines) >= self.config.batch.max_points:
                self._cond.notify()

    def _rejected(self, reason: str, count: int = 1) -> None:
        self.metrics.rejected(reason=reason).inc(count)
        self.tick_stats.rejected(count)

    def _readings(self, ref: contract.TopicRef,
                  payload: bytes) -> tuple[list[str], int, int | None]:
        now_ms = time.time_ns() // 1_000_000
        batch = decode_readings(ref, payload, self.catalogue, now_ms,
                                self.config.max_payload_bytes)
        lines = points.reading_lines(batch)
        lines += self._state_changes.lines(batch)
        if batch.quarantined:
            lines += points.quarantine_lines(batch, now_ms)
            for q in batch.quarantined:
                self._rejected(q.reason)
            self._throttled.warning(
                "quarantine", f"{batch.device.id}: {len(batch.quarantined)} readings with "
                f"timestamps outside the window quarantined ({batch.quarantined[0].reason})")
        self.presence.seen(batch.device.id)
        self.metrics.readings_accepted.inc(len(batch.readings))
        for reading in sorted(batch.readings, key=lambda r: r.ts):
            for event in self.engine.evaluate(batch.device, reading.ts, reading.values):
                lines.append(points.alarm_line(event, batch.device))
                self._publish_alarm(event)
        oldest = min((r.ts for r in batch.readings), default=None)
        return lines, len(batch.readings), oldest

    def _publish_alarm(self, event: AlarmEvent) -> None:
        assert self._client is not None
        publish_alarm(self._client, event)
        if self.outbox is not None:
            self.outbox.enqueue(event.as_dict())  # committed before we go on: exactly one event
        self.metrics.alarms(state=event.state, severity=event.severity).inc()
        self.metrics.alarms_active.set(len(self.engine.active))
        log.info("alarm %s %s: %s (value %s)", event.state, event.alarm_id[:8], event.title_zh,
                 event.value)

    def _acknowledge(self, payload: bytes) -> None:
        try:
            body = json.loads(payload.decode("utf-8"))
            alarm_id, by = str(body["alarm_id"]), str(body.get("by") or "operator")[:64]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
            raise Rejected("bad_ack", f"an ack needs {{\"alarm_id\", \"by\"}}: {err}") from err
        assert self._client is not None
        event = self.engine.acknowledge(alarm_id, by)
        if event is None:
            publish_ack_result(self._client, alarm_id, False, "no active alarm with this id")
            return
        self._publish_alarm(event)
        publish_ack_result(self._client, alarm_id, True)
        self._enqueue([points.alarm_line(event, self.catalogue.get(event.device))])

    def _tick_loop(self) -> None:
        """Silence (no_data) and pending durations that expire without a reading."""
        devices = list(self.catalogue.devices.values())
        while not self._stopping.wait(self.config.rules.tick_s):
            if not self.connected.is_set():
                continue
            events = self.engine.tick(devices)
            for event in events:
                self._publish_alarm(event)
            self._enqueue([points.alarm_line(e, self.catalogue.get(e.device)) for e in events])

    def _health_loop(self) -> None:
        """device_health, gateway_health, alarm_summary, ingest_stats (health.py), written
        through the batch like everything else (retried while InfluxDB is down)."""
        while not self._stopping.wait(self.config.health_interval_s):
            try:
                with self._cond:
                    pending = self._writing + len(self._batch.acks)
                lines = self.health.lines(self.engine.active, pending)
            except Exception:  # a bug must not stop the ticks: log it, try again next tick
                log.exception("health tick failed")
                continue
            self._enqueue(lines)

    def _gateway_stats(self, ref: contract.TopicRef, payload: bytes) -> list[str]:
        stats = decode_gateway_stats(ref, payload, time.time_ns() // 1_000_000,
                                     self.config.max_payload_bytes)
        return points.edge_counter_lines(stats.gateway, stats.polls, stats.rejected, stats.ts)

    def _status(self, ref: contract.TopicRef, payload: bytes) -> list[str]:
        if not payload:  # a cleared retained message
            return []
        try:
            body = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise Rejected("bad_json", f"status is not JSON: {err}") from err
        if not isinstance(body, dict):
            raise Rejected("bad_schema", "status is not a JSON object")
        state = body.get("state")
        ts = body.get("ts")
        ts = ts if isinstance(ts, int) and not isinstance(ts, bool) else time.time_ns() // 10**6
        if ref.kind == "buffer":
            return [self._buffer_status(ref.gateway, body, ts)]
        if ref.kind == "status":
            if state not in ("online", "offline"):
                raise Rejected("bad_schema", f"gateway state {state!r}")
            self.presence.gateway_status(ref.gateway, state == "online")
            return [points.gateway_status_line(ref.gateway, state, ts)]
        if state not in ("online", "unreachable"):
            raise Rejected("bad_schema", f"device state {state!r}")
        device = self.catalogue.get(str(ref.device))
        if device is None or device.gateway != ref.gateway:
            raise Rejected("unknown_device", f"status for unregistered device {ref.device!r}")
        self.presence.device_status(device.id, state == "online")
        reason = str(body.get("reason", ""))[:200]
        return [points.device_status_line(ref.gateway, device.id, state, reason, ts)]

    def _buffer_status(self, gateway: str, body: dict[str, object], ts: int) -> str:
        fields: dict[str, int] = {}
        for key in ("readings", "bytes", "dropped_total"):
            value = body.get(key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise Rejected("bad_schema", f"buffer status field {key!r} must be an integer")
            fields[key] = value
        self.metrics.edge_reported_drops.labels(gateway=gateway).set(fields["dropped_total"])
        self.metrics.edge_backlog.labels(gateway=gateway).set(fields["readings"])
        self.presence.gateway_buffer(gateway, fields["readings"], fields["dropped_total"])
        return points.buffer_status_line(gateway, fields, ts)

    # --- flusher thread ------------------------------------------------------------------------
    def _take_batch(self) -> _Batch | None:
        max_delay = self.config.batch.max_delay_ms / 1000
        with self._cond:
            while not self._stopping.is_set():
                batch = self._batch
                filled = bool(batch.acks or batch.lines)
                due = batch.started + max_delay - time.monotonic()
                if filled and (due <= 0 or len(batch.lines) >= self.config.batch.max_points):
                    break
                self._cond.wait(timeout=max_delay if not filled else max(due, 0.001))
            batch, self._batch = self._batch, _Batch()
            self._writing = len(batch.acks)
            return batch if batch.acks or batch.lines else None

    def _flush_loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is not None:
                self._write_and_ack(batch)
            if self._stopping.is_set() and batch is None:
                return

    def _write_and_ack(self, batch: _Batch) -> None:
        delay = self.config.batch.retry_initial_s
        while True:
            started = time.perf_counter()
            try:
                self.writer.write(batch.lines)
                seconds = time.perf_counter() - started
                self.metrics.write_seconds.observe(seconds)
                self.metrics.points_written.inc(batch.readings)
                lag_s = None
                if batch.oldest_ts is not None:
                    lag_s = (time.time_ns() // 1_000_000 - batch.oldest_ts) / 1000
                    self.metrics.lag.set(max(0.0, lag_s))
                self.tick_stats.wrote(batch.readings, seconds, lag_s)
                break
            except WriteError as err:
                if not err.retryable:
                    self._rejected("influx_refused", len(batch.acks))
                    self._throttled.warning("influx_refused", f"InfluxDB refused a batch: {err}")
                    break
                self.metrics.write_retries.inc()
                self._throttled.warning("influx_down", f"write failed, retrying: {err}")
                if self._stopping.wait(delay * random.uniform(0.5, 1.0)):
                    return  # stopping: leave it unacknowledged; the broker redelivers it
                delay = min(delay * 2, self.config.batch.retry_max_s)
        assert self._client is not None
        for mid, qos in batch.acks:
            self._client.ack(mid, qos)
        with self._cond:
            self._writing = 0
            self.metrics.pending.set(len(self._batch.acks))


def _no_delay(client: mqtt.Client) -> None:
    """Disable Nagle's algorithm: alarms are small messages that must leave at once."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
