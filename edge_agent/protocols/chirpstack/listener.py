"""The `chirpstack_mqtt` listener: uplinks from an existing ChirpStack v4 network server.

For sites that already run a LoRaWAN network server: ChirpStack has checked the MIC and frame
counter, deduplicated the gateways' copies and decrypted the payload, and publishes each
uplink on its MQTT integration. This listener subscribes (paho-mqtt 2.x, network loop in
paho's own thread), hands every message to the event loop with `call_soon_threadsafe`, decodes
it there (codec.py), finds the device by DevEUI (`params.dev_eui`), decodes the payload by the
profile (semtech_udp/payload.py) and gives raw values to the sink.

Rejections are counted as `frames_rejected{protocol="chirpstack", reason}`: `bad_json`,
`bad_event`, `bad_base64`, `topic_mismatch`, `unknown_dev_eui`, `unexpected_fport`,
`payload_length`, `duplicate` (a redelivered event: same deduplicationId). Events without
payload (FPort 0) carry no reading and are not counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from device_profiles.schema import Profile
from edge_agent.errors import FrameError
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.base import ReadingSink
from edge_agent.protocols.chirpstack.codec import (
    EventError,
    decode_uplink_event,
    topic_dev_eui,
)
from edge_agent.protocols.chirpstack.config import ChirpstackMqttConfig
from edge_agent.protocols.semtech_udp.payload import decode_payload
from edge_agent.protocols.semtech_udp.rejections import Rejections

log = logging.getLogger(__name__)

PROTOCOL = "chirpstack"
RECENT_EVENTS = 4096


@dataclass(frozen=True)
class ChirpstackDevice:
    device_id: str
    dev_eui: str
    profile: Profile


class ChirpstackListener:
    """Subscribes to ChirpStack uplink events and hands readings to a sink."""

    def __init__(self, settings: ChirpstackMqttConfig, devices: list[ChirpstackDevice],
                 metrics: EdgeMetrics) -> None:
        self.settings = settings
        self.devices = {d.dev_eui.lower(): d for d in devices}
        self.metrics = metrics
        self.rejections = Rejections(metrics, PROTOCOL, log)
        self.subscribed = asyncio.Event()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._sink: ReadingSink | None = None

    @property
    def where(self) -> str:
        return f"mqtt://{self.settings.host}:{self.settings.port} {self.settings.topic}"

    async def run(self, sink: ReadingSink) -> None:
        """Subscribe until cancelled."""
        self._sink = sink
        client = self._client(asyncio.get_running_loop())
        client.connect_async(self.settings.host, self.settings.port,
                             keepalive=self.settings.keepalive_s)
        client.loop_start()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.to_thread(_stop, client)

    def _client(self, loop: asyncio.AbstractEventLoop) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id or "",
                             clean_session=s.client_id is None, protocol=mqtt.MQTTv311)
        if s.username:
            client.username_pw_set(s.username, s.password())
        client.reconnect_delay_set(1, int(max(1, s.reconnect_max_s)))

        def on_connect(c: mqtt.Client, _u: object, _f: object, reason: ReasonCode,
                       _p: object) -> None:
            if reason.is_failure:
                log.error("ChirpStack broker %s refused the connection: %s", self.where, reason)
                return
            c.subscribe(s.topic, qos=s.qos)

        def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, reasons: list[ReasonCode],
                         _p: object) -> None:
            if any(r.is_failure for r in reasons):
                log.error("ChirpStack broker %s refused the subscription: %s", self.where,
                          reasons)
                return
            log.info("ChirpStack: subscribed to %s (%d devices)", self.where, len(self.devices))
            _call(loop, self.subscribed.set)

        def on_disconnect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode,
                          _p: object) -> None:
            if reason.is_failure:
                log.warning("ChirpStack broker %s disconnected: %s (will reconnect)",
                            self.where, reason)
            _call(loop, self.subscribed.clear)

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            _call(loop, self.on_message, msg.topic, bytes(msg.payload))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        return client

    def on_message(self, topic: str, payload: bytes) -> None:
        """Handle one event message (in the event loop)."""
        try:
            self._handle(topic, payload)
        except FrameError as err:
            self.rejections.reject(getattr(err, "reason", "invalid"), f"{err} (topic {topic})")

    def _handle(self, topic: str, payload: bytes) -> None:
        event = decode_uplink_event(payload)
        named = topic_dev_eui(topic)
        if named is not None and named != event.dev_eui:
            raise EventError("topic_mismatch", 0, f"topic names {named}, the event "
                             f"{event.dev_eui}")
        device = self.devices.get(event.dev_eui)
        if device is None:
            raise EventError("unknown_dev_eui", 0, f"DevEUI {event.dev_eui}")
        if self._seen(event.deduplication_id):
            raise EventError("duplicate", 0, f"event {event.deduplication_id} again")
        if event.fport == 0:
            return
        wanted = getattr(device.profile.protocol, "fport", event.fport)
        if event.fport != wanted:
            raise EventError("unexpected_fport", 0, f"FPort {event.fport} from "
                             f"{device.device_id}, the profile reads {wanted}")
        raw = decode_payload(device.profile, event.data)
        ts = (event.reading_time_ms(self.settings.max_clock_skew_s * 1000)
              if self.settings.use_gateway_time else event.time_ms)
        assert self._sink is not None, "run() first"
        self._sink(device.device_id, raw, ts)

    def _seen(self, deduplication_id: str | None) -> bool:
        if deduplication_id is None:
            return False
        if deduplication_id in self._recent:
            return True
        self._recent[deduplication_id] = None
        if len(self._recent) > RECENT_EVENTS:
            self._recent.popitem(last=False)
        return False


def _call(loop: asyncio.AbstractEventLoop, callback: object, *args: object) -> None:
    """Schedule `callback(*args)` in the event loop from paho's thread (dropped once closed)."""
    try:
        loop.call_soon_threadsafe(callback, *args)  # type: ignore[arg-type]
    except RuntimeError:
        log.debug("event loop closed; ChirpStack message dropped")


def _stop(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()
