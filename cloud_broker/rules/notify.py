"""Alarm transitions on MQTT: every transition on the events tree, and the current state of
every active occurrence retained on the active tree (an empty retained message removes it when
it clears), so a consumer that connects late sees what is active now."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt

from cloud_broker.rules.engine import AlarmEvent
from edge_agent.uplink import contract


def publish_alarm(client: mqtt.Client, event: AlarmEvent) -> None:
    payload = json.dumps(event.as_dict(), ensure_ascii=False).encode()
    where = (event.severity, event.domain, event.device, event.rule)
    client.publish(contract.alarm_event_topic(*where), payload, qos=1)
    retained = b"" if event.state == "cleared" else payload
    client.publish(contract.alarm_active_topic(*where), retained, qos=1, retain=True)


def publish_ack_result(client: mqtt.Client, alarm_id: str, ok: bool, reason: str = "") -> None:
    body = {"alarm_id": alarm_id, "ok": ok, "reason": reason}
    client.publish(contract.alarm_ack_result_topic(alarm_id),
                   json.dumps(body, ensure_ascii=False).encode(), qos=1)
