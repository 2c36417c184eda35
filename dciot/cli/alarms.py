"""`dciot alarms ...`: watch the active alarms live, acknowledge one. Talks MQTT only."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
import typer
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.live import Live
from rich.table import Table

from edge_agent.uplink import contract

app = typer.Typer(help="Watch and acknowledge alarms.", no_args_is_help=True)
console = Console()
SEVERITY_STYLE = {"critical": "bold red", "major": "red", "minor": "yellow", "warning": "cyan"}
SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2, "warning": 3}


def _client(host: str, port: int, username: str | None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, typer.prompt("broker password", hide_input=True))
    return client


def _table(active: dict[str, dict[str, object]]) -> Table:
    table = Table(title=f"Active alarms ({len(active)})")
    for column in ("severity", "title", "device", "raised", "acknowledged by", "id"):
        table.add_column(column)
    rows = sorted(active.values(), key=lambda a: (SEVERITY_ORDER.get(str(a["severity"]), 9),
                                                  -int(str(a["raised_ts"]))))
    for a in rows:
        sev = str(a["severity"])
        raised = time.strftime("%m-%d %H:%M:%S", time.localtime(int(str(a["raised_ts"])) / 1000))
        table.add_row(f"[{SEVERITY_STYLE.get(sev, '')}]{sev}[/]", str(a["title_zh"]),
                      str(a["device"]), raised, str(a.get("acked_by") or ""),
                      str(a["alarm_id"]))
    return table


@app.command("watch")
def watch(host: str = typer.Option("127.0.0.1", help="broker host"),
          port: int = typer.Option(1883, help="broker port"),
          username: str | None = typer.Option(None, help="broker user (asks the password)"),
          duration: float | None = typer.Option(None, help="stop after this many seconds"),
          ) -> None:
    """A live table of the active alarms (the retained state, then every transition)."""
    active: dict[str, dict[str, object]] = {}
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            if not msg.payload:  # the retained state was removed: cleared
                for key in [k for k, a in active.items() if msg.topic.endswith(
                        f"/{a['device']}/{a['rule']}")]:
                    active.pop(key)
                return
            event = json.loads(msg.payload)
            active[str(event["alarm_id"])] = event

    client = _client(host, port, username)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(contract.ALARMS_ACTIVE_SUBSCRIPTION, qos=1)
    client.connect(host, port)
    client.loop_start()
    started = time.monotonic()
    try:
        with Live(console=console, auto_refresh=False) as live:
            while duration is None or time.monotonic() - started < duration:
                with lock:
                    live.update(_table(dict(active)), refresh=True)
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()


@app.command("ack")
def ack(alarm_id: str = typer.Argument(..., help="the alarm occurrence id"),
        by: str = typer.Option(..., "--by", help="who acknowledges (recorded)"),
        host: str = typer.Option("127.0.0.1", help="broker host"),
        port: int = typer.Option(1883, help="broker port"),
        username: str | None = typer.Option(None, help="broker user (asks the password)"),
        timeout: float = typer.Option(10.0, help="seconds to wait for the rule engine"),
        ) -> None:
    """Acknowledge an active alarm; exits 1 if the rule engine does not know it."""
    result: dict[str, object] = {}
    answered = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        result.update(json.loads(msg.payload))
        answered.set()

    client = _client(host, port, username)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, port)
    client.loop_start()
    try:
        client.subscribe(contract.alarm_ack_result_topic(alarm_id), qos=1)
        if not subscribed.wait(timeout):
            raise typer.Exit(2)
        body = json.dumps({"alarm_id": alarm_id, "by": by}, ensure_ascii=False).encode()
        client.publish(contract.ALARM_ACK_TOPIC, body, qos=1)
        if not answered.wait(timeout):
            console.print(f"[red]no answer from the rule engine within {timeout} s[/red]")
            raise typer.Exit(2)
    finally:
        client.disconnect()
        client.loop_stop()
    if not result.get("ok"):
        console.print(f"[red]not acknowledged:[/red] {result.get('reason')}")
        raise typer.Exit(1)
    console.print(f"acknowledged {alarm_id} by {by}")
