"""Overdue events on a real mosquitto: an event with a tiny time limit becomes overdue and its
escalation arrives; an event is marked (and escalated) once; a handled one never; an
escalation waits out a broker outage."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_broker.events.api import AlarmIn, event_from_alarm
from cloud_broker.events.catalogue import Catalogue, load_catalogue
from cloud_broker.events.lifecycle import Action, Event
from cloud_broker.events.overdue import ESCALATIONS_SUBSCRIPTION, MqttPublisher, OverdueChecker
from cloud_broker.events.service import EscalationBroker, EventCentre, EventCentreConfig
from cloud_broker.events.store import EventStore
from cloud_broker.rules.engine import AlarmEvent
from dciot.runtime import MosquittoServer, free_port
from device_profiles.schema import PROFILES_ROOT

Poll = Callable[..., object]
MIN = 60_000
CATALOGUE = """\
schema: 1
departments:
  - {id: lighting, name_zh: 城市照明管理处}
  - {id: environment, name_zh: 生态环境分局}
entries:
  - domain: smart_pole
    rule: pole_tilted
    category: 市政设施/照明设施
    grade: 二级
    department: lighting
    handling_time_limit_minutes: 0.01
    closing_standard: 灯杆扶正加固
  - domain: smart_pole
    rule: pm25_high
    category: 生态环境/大气污染
    grade: 三级
    department: environment
    handling_time_limit_minutes: 30
    closing_standard: 污染源已处置
"""


def alarm(alarm_id: str, rule: str = "pole_tilted",
          raised_ts: int | None = None) -> dict[str, object]:
    raised_ts = raised_ts if raised_ts is not None else time.time_ns() // 1_000_000
    return AlarmEvent(
        alarm_id=alarm_id, state="raised", device="pole-001", device_name="东昌路1号灯杆",
        gateway="gw-a", site="东昌路", domain="smart_pole", profile="dc-smartpole-v1",
        rule=rule, kind="threshold", point="tilt", severity="major", title_zh="灯杆倾斜",
        description_zh="", value=6.2, threshold=5.0, unit="°", ts=raised_ts,
        raised_ts=raised_ts).as_dict()


class Escalations:
    """A subscriber to every escalation, collecting (topic, payload)."""

    def __init__(self, broker: MosquittoServer) -> None:
        self.received: list[tuple[str, dict[str, object]]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(ESCALATIONS_SUBSCRIPTION, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.received.append(
            (msg.topic, json.loads(msg.payload)))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()


@pytest.fixture
def escalations(mosquitto: MosquittoServer, poll: Poll) -> Iterator[Escalations]:
    subscriber = Escalations(mosquitto)
    poll(subscriber.subscribed.is_set, timeout_s=10, what="the escalation subscription")
    yield subscriber
    subscriber.client.disconnect()
    subscriber.client.loop_stop()


@pytest.fixture
def catalogue(tmp_path: Path) -> Catalogue:  # overrides the device catalogue of the conftest
    path = tmp_path / "catalogue.yaml"
    path.write_text(CATALOGUE, encoding="utf-8")
    return load_catalogue(path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    store = EventStore(tmp_path / "events.sqlite")
    store.open()
    yield store
    store.close()


@pytest.fixture
def publisher(mosquitto: MosquittoServer) -> Iterator[MqttPublisher]:
    publisher = MqttPublisher(mosquitto.host, mosquitto.port, "test-event-centre", timeout_s=5)
    publisher.start()
    yield publisher
    publisher.stop()


def add(store: EventStore, catalogue: Catalogue, alarm_id: str, rule: str,
        raised_ts: int) -> Event:
    event = event_from_alarm(AlarmIn.model_validate(alarm(alarm_id, rule, raised_ts)),
                             catalogue, raised_ts)
    return store.create(event)[0]


def test_a_tiny_time_limit_escalates_through_the_service(
        tmp_path: Path, catalogue: Catalogue, mosquitto: MosquittoServer,
        escalations: Escalations, poll: Poll) -> None:
    config = EventCentreConfig(
        port=free_port(), db_path=tmp_path / "centre.sqlite",
        catalogue_path=tmp_path / "catalogue.yaml",
        profiles_dir=PROFILES_ROOT / "streetlight",
        broker=EscalationBroker(host=mosquitto.host, port=mosquitto.port),
        overdue_check_s=0.05)
    centre = EventCentre(config)
    centre.start()
    try:
        created = httpx.post(f"{centre.url}/api/v1/events", json={"alarm": alarm("occ-1")})
        event_id = created.json()["id"]
        poll(lambda: escalations.received, timeout_s=20, what="the escalation")
        topic, payload = escalations.received[0]
        event = httpx.get(f"{centre.url}/api/v1/events/{event_id}").json()
    finally:
        centre.stop()
    assert topic == "dc/v1/events/escalations/lighting"
    assert payload["schema"] == "dc.escalation/1"
    assert (payload["event_id"], payload["department"], payload["department_zh"]) == (
        event_id, "lighting", "城市照明管理处")
    assert (payload["status"], payload["grade"], payload["alarm_id"]) == ("reported", "二级",
                                                                          "occ-1")
    assert payload["deadline_ts"] == created.json()["reported_ts"] + 600
    assert event["overdue"] is True
    assert event["overdue_ts"] == payload["overdue_ts"] > payload["deadline_ts"]
    assert event["escalated_ts"] is not None


def test_marked_and_escalated_once_and_never_when_handled_in_time(
        store: EventStore, catalogue: Catalogue, publisher: MqttPublisher,
        escalations: Escalations, poll: Poll) -> None:
    t0 = 1_764_000_000_000
    late = add(store, catalogue, "occ-late", "pm25_high", t0)
    on_time = add(store, catalogue, "occ-ok", "pm25_high", t0)
    store.advance(on_time.id, Action.accept, "张三", t0 + MIN)
    store.advance(on_time.id, Action.dispatch, "张三", t0 + 2 * MIN, "environment")
    store.advance(on_time.id, Action.handle, "李四", t0 + 29 * MIN)
    checker = OverdueChecker(store, catalogue, publisher)
    poll(lambda: publisher.publish("dc/v1/test/ready", b"1"), timeout_s=10,
         what="the publisher's connection")

    assert checker.check(t0 + 30 * MIN) == []  # the deadline itself is still in time
    [marked] = checker.check(t0 + 30 * MIN + 1)
    assert (marked.id, marked.overdue, marked.overdue_ts) == (late.id, True, t0 + 30 * MIN + 1)
    assert checker.check(t0 + 31 * MIN) == []
    assert checker.check(t0 + 90 * MIN) == []
    assert store.unescalated() == []  # nothing left to publish: it went out once
    assert store.get(on_time.id).overdue is False
    poll(lambda: escalations.received, timeout_s=10, what="the escalation")
    assert [(t, p["event_id"]) for t, p in escalations.received] == [
        ("dc/v1/events/escalations/environment", late.id)]
    assert escalations.received[0][1]["overdue_minutes"] == 0.0


def test_an_escalation_waits_out_a_broker_outage(
        store: EventStore, catalogue: Catalogue, mosquitto: MosquittoServer, poll: Poll) -> None:
    mosquitto.stop()
    publisher = MqttPublisher(mosquitto.host, mosquitto.port, "test-event-centre", timeout_s=2)
    publisher.start()
    try:
        t0 = 1_764_000_000_000
        event = add(store, catalogue, "occ-1", "pm25_high", t0)
        checker = OverdueChecker(store, catalogue, publisher)
        assert [e.id for e in checker.check(t0 + 31 * MIN)] == [event.id]
        assert [e.id for e in store.unescalated()] == [event.id]  # marked, not yet sent
        mosquitto.start()
        subscriber = Escalations(mosquitto)
        poll(subscriber.subscribed.is_set, timeout_s=10, what="the escalation subscription")

        def escalated() -> bool:
            checker.check(t0 + 40 * MIN)
            return bool(subscriber.received)

        poll(escalated, timeout_s=30, what="the escalation after the broker came back")
        assert [p["event_id"] for _, p in subscriber.received] == [event.id]
        assert store.unescalated() == []
        assert store.get(event.id).overdue_ts == t0 + 31 * MIN  # marked once, at the first
        subscriber.client.disconnect()
        subscriber.client.loop_stop()
    finally:
        publisher.stop()
