"""MQTT uplink of the edge agent (paho-mqtt 2.x, MQTT 5, network loop in paho's thread).

Presence: a retained birth message on connect and a retained last will, so the cloud sees the
gateway go offline when the connection drops; a clean stop publishes "offline" itself.
Counters: `dc.gateway-stats/1` (totals since start) on every connect, every `stats_interval_s`
(app.py) and at a clean stop; never through the disk buffer, as the next one supersedes it.
Commands: with `on_command` set, every connect subscribes to the gateway's command requests
(QoS 1) and hands each message (topic, payload) to it from paho's thread; results go out with
`publish_command_result`, QoS 1, not through the disk buffer (the command ledger keeps them).
`on_connected` is called from paho's thread after every connect.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.commands.contract import command_request_subscription, command_result_topic
from edge_agent.config import GatewayConfig
from edge_agent.metrics import EdgeMetrics
from edge_agent.uplink import contract

log = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MqttUplink:
    """Publishes readings and statuses for one gateway."""

    def __init__(self, config: GatewayConfig, metrics: EdgeMetrics,
                 on_acked: Callable[[int], None] = lambda _mid: None) -> None:
        self.config = config
        self.metrics = metrics
        self.on_acked = on_acked
        self.connected = threading.Event()
        self.on_command: Callable[[str, bytes], None] | None = None
        self.on_connected: Callable[[], None] = lambda: None
        self._client: mqtt.Client | None = None

    def start(self) -> None:
        broker = self.config.broker
        gw = self.config.gateway_id
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=broker.client_id or gw,
                             protocol=mqtt.MQTTv5)
        if broker.username:
            client.username_pw_set(broker.username, broker.password())
        if broker.tls is not None:
            tls = broker.tls
            client.tls_set(ca_certs=str(tls.cafile),
                           certfile=str(tls.certfile) if tls.certfile else None,
                           keyfile=str(tls.keyfile) if tls.keyfile else None)
        will = contract.encode_gateway_status(gw, "offline", None, reason="connection lost")
        client.will_set(contract.gateway_status_topic(gw), will, qos=1, retain=True)
        client.max_queued_messages_set(broker.max_queued_messages)
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(1, int(max(1, broker.reconnect_max_s)))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = lambda _c, _u, mid, _rc, _p: self.on_acked(mid)
        client.on_message = self._on_message
        self._client = client
        client.connect_async(broker.host, broker.port, keepalive=broker.keepalive_s,
                             clean_start=True)
        client.loop_start()

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object,
                    reason: ReasonCode, _props: Properties | None) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):  # small messages: send at once, no Nagle delay
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        gw = self.config.gateway_id
        birth = contract.encode_gateway_status(
            gw, "online", _now_ms(), site=self.config.site, devices=len(self.config.devices),
            agent_version=AGENT_VERSION)
        client.publish(contract.gateway_status_topic(gw), birth, qos=1, retain=True)
        client.publish(contract.gateway_stats_topic(gw), self._stats_payload(), qos=1)
        if self.on_command is not None:
            client.subscribe(command_request_subscription(gw), qos=1)
        self.connected.set()
        self.metrics.uplink_connected.set(1)
        log.info("connected to broker %s:%s", self.config.broker.host, self.config.broker.port)
        self.on_connected()

    def _on_message(self, _client: mqtt.Client, _userdata: object,
                    msg: mqtt.MQTTMessage) -> None:
        if self.on_command is not None:
            self.on_command(msg.topic, msg.payload)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object,
                       reason: ReasonCode, _props: Properties | None) -> None:
        if self.connected.is_set():
            log.warning("disconnected from broker: %s (will reconnect)", reason)
        self.connected.clear()
        self.metrics.uplink_connected.set(0)

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> int | None:
        """Hand a QoS 1 message to paho; its message id, or None when paho's queue is full."""
        assert self._client is not None, "start() first"
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return None if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE else info.mid

    def publish_readings(self, device: str, profile: str,
                         readings: list[contract.Reading]) -> int | None:
        """Publish one reading batch with QoS 1; return the message id (None: queue full).

        `on_acked(mid)` is called from paho's thread once the broker acknowledged it.
        """
        gw = self.config.gateway_id
        payload = contract.encode_readings(gw, device, profile, readings)
        mid = self._publish(contract.readings_topic(gw, device), payload)
        if mid is not None:
            self.metrics.readings_published.inc(len(readings))
        return mid

    def publish_buffer_status(self, readings: int, size_bytes: int, oldest_ts: int | None,
                              dropped: dict[str, int]) -> None:
        gw = self.config.gateway_id
        payload = contract.encode_buffer_status(gw, _now_ms(), readings, size_bytes, oldest_ts,
                                                dropped)
        self._publish(contract.buffer_status_topic(gw), payload, retain=True)

    def publish_device_status(self, device: str, state: str, reason: str,
                              failures: int) -> None:
        gw = self.config.gateway_id
        payload = contract.encode_device_status(gw, device, state, _now_ms(), reason, failures)
        self._publish(contract.device_status_topic(gw, device), payload, retain=True)

    def publish_command_result(self, device: str, payload: bytes) -> bool:
        """A dc.command-result/1 on the device's result topic, QoS 1; False when it could
        not be handed to paho now (offline or paho's queue full)."""
        if not self.connected.is_set():
            return False
        topic = command_result_topic(self.config.gateway_id, device)
        return self._publish(topic, payload) is not None

    def _stats_payload(self) -> bytes:
        return contract.encode_gateway_stats(self.config.gateway_id, _now_ms(),
                                             self.metrics.poll_totals.snapshot(),
                                             self.metrics.rejected_totals.snapshot())

    def publish_gateway_stats(self) -> None:
        """The totals since start (not retained, not buffered: the next one supersedes it)."""
        self._publish(contract.gateway_stats_topic(self.config.gateway_id),
                      self._stats_payload())

    def stop(self, timeout_s: float = 3.0) -> None:
        """Send the final totals, say "offline" (a clean disconnect sends no will), flush,
        disconnect."""
        client = self._client
        if client is None:
            return
        if self.connected.is_set():
            gw = self.config.gateway_id
            client.publish(contract.gateway_stats_topic(gw), self._stats_payload(), qos=1)
            info = client.publish(
                contract.gateway_status_topic(gw),
                contract.encode_gateway_status(gw, "offline", _now_ms(), reason="stopped"),
                qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as err:
                log.warning("offline status not sent: %s", err)
        client.disconnect()
        client.loop_stop()
        self._client = None
