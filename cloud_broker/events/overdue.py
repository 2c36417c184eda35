"""Overdue events and their escalation on MQTT.

Every `interval_s` the checker marks each open event (reported, accepted or dispatched) whose
deadline (report + the catalogue's handling time limit) has passed as overdue — once: the
store's UPDATE only touches events not yet marked — and publishes an escalation JSON
(schema dc.escalation/1) with QoS 1 on

    dc/v1/events/escalations/{department}      (department id; `unassigned` when none)

An escalation counts as sent when the broker acknowledges it (PUBACK); until then it is retried
at every check, so a broker outage delays escalations but loses none. A crash between the PUBACK
and recording it can repeat one: consumers key on `event_id`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_broker.events.catalogue import Catalogue
from cloud_broker.events.lifecycle import Event
from cloud_broker.events.store import EventStore

log = logging.getLogger(__name__)

ESCALATION_SCHEMA = "dc.escalation/1"
ESCALATIONS_ROOT = "dc/v1/events/escalations"
ESCALATIONS_SUBSCRIPTION = f"{ESCALATIONS_ROOT}/#"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def escalation_topic(department: str | None) -> str:
    return f"{ESCALATIONS_ROOT}/{department or 'unassigned'}"


def escalation(event: Event, catalogue: Catalogue, ts: int) -> dict[str, object]:
    """The dc.escalation/1 payload of an overdue event."""
    return {
        "schema": ESCALATION_SCHEMA, "event_id": event.id, "department": event.department,
        "department_zh": catalogue.department_name(event.department),
        "title_zh": event.title_zh, "category": event.category, "grade": event.grade,
        "status": str(event.status), "source": str(event.source),
        "handling_time_limit_minutes": event.handling_time_limit_minutes,
        "reported_ts": event.reported_ts, "deadline_ts": event.deadline_ts,
        "overdue_ts": event.overdue_ts,
        "overdue_minutes": round(max(0, ts - event.deadline_ts) / 60_000, 1),
        "alarm_id": event.alarm_id, "device": event.device, "site": event.site, "ts": ts,
    }


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> bool:
        """True once the broker has acknowledged the message."""


class MqttPublisher:
    """A paho-mqtt 2.x client (MQTT 5, QoS 1) that reconnects by itself."""

    def __init__(self, host: str, port: int, client_id: str, username: str | None = None,
                 password: str | None = None, timeout_s: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.username = username
        self.password = password
        self.timeout_s = timeout_s
        self._client: mqtt.Client | None = None

    def start(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5)
        if self.username:
            client.username_pw_set(self.username, self.password)
        client.reconnect_delay_set(1, 30)
        client.connect_async(self.host, self.port)
        client.loop_start()
        self._client = client

    def publish(self, topic: str, payload: bytes) -> bool:
        client = self._client
        if client is None or not client.is_connected():
            return False
        info = client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None


class OverdueChecker:
    """Marks overdue events and escalates them; `check()` once, or `start()` a thread."""

    def __init__(self, store: EventStore, catalogue: Catalogue, publisher: Publisher | None,
                 interval_s: float = 30.0, clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.catalogue = catalogue
        self.publisher = publisher
        self.interval_s = interval_s
        self.clock = clock
        self.checks = 0
        self._broker_down = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, now_ts: int | None = None) -> list[Event]:
        """Mark events overdue at `now_ts` (default: now), publish pending escalations;
        return the events marked by this check."""
        now_ts = now_ts if now_ts is not None else self.clock()
        marked = self.store.mark_overdue(now_ts)
        for event in marked:
            log.warning("event %d (%s, %s) is overdue: %.1f min past its %g min limit, "
                        "still %s", event.id, event.title_zh, event.department,
                        (now_ts - event.deadline_ts) / 60_000,
                        event.handling_time_limit_minutes, event.status)
        if self.publisher is not None:
            self._escalate(self.publisher, now_ts)
        self.checks += 1
        return marked

    def _escalate(self, publisher: Publisher, now_ts: int) -> None:
        for event in self.store.unescalated():
            payload = json.dumps(escalation(event, self.catalogue, now_ts), ensure_ascii=False)
            if not publisher.publish(escalation_topic(event.department), payload.encode()):
                if not self._broker_down:
                    log.warning("escalations not acknowledged by the broker; retrying at "
                                "every check")
                self._broker_down = True
                return
            if self._broker_down:
                log.info("escalations are published again")
                self._broker_down = False
            self.store.mark_escalated(event.id, now_ts)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="overdue-checker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # keep checking; the next round retries
                log.exception("overdue check failed")
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
