"""The event centre as a process: config, start-up checks, the HTTP server and the overdue
checker. Start-up loads the catalogue, checks it against the device profiles (an entry naming a
rule no profile declares stops start-up; profile rules with no entry are logged as not
mapped), opens the SQLite store, then serves the API (uvicorn) and checks for overdue events
every `overdue_check_s`, escalating them on MQTT when a broker is configured. With `influx:`
it writes its figures to InfluxDB every `stats_interval_s` (influx_stats.py).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn
import yaml
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud_broker.config import ConfigError, InfluxConfig, secret_from_env
from cloud_broker.events.api import create_app
from cloud_broker.events.catalogue import CATALOGUE_PATH, check_catalogue, load_catalogue
from cloud_broker.events.influx_stats import InfluxStats
from cloud_broker.events.overdue import MqttPublisher, OverdueChecker
from cloud_broker.events.store import EventStore
from cloud_broker.ingest.writer import InfluxWriter
from device_profiles.schema import PROFILES_ROOT, load_profiles

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The HTTP server did not start (port taken, ...)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EscalationBroker(_Frozen):
    """The MQTT broker escalations of overdue events are published on."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_env: str | None = Field(None, description="env var holding the password")
    client_id: str = "dciot-event-centre"
    publish_timeout_s: float = Field(5.0, gt=0, description="wait this long for the PUBACK")


class EventCentreConfig(_Frozen):
    host: str = Field("127.0.0.1", description="HTTP listen address")
    port: int = Field(8600, ge=1, le=65535, description="HTTP port")
    db_path: Path = Field(Path("state/events.sqlite"), description="SQLite file; relative "
                          "to the config file")
    catalogue_path: Path = Field(CATALOGUE_PATH, description="事项清单 YAML; default the "
                                 "catalogue shipped beside the code")
    profiles_dir: Path = Field(PROFILES_ROOT, description="device profiles the catalogue is "
                               "checked against")
    broker: EscalationBroker | None = Field(EscalationBroker(), description="null: mark "
                                            "overdue events but publish no escalations")
    overdue_check_s: float = Field(30.0, gt=0, description="how often overdue events are "
                                   "looked for")
    access_log: bool = Field(False, description="log every HTTP request")
    influx: InfluxConfig | None = Field(None, description="where the figures are written "
                                        "(measurement event_centre); null: not written")
    stats_interval_s: float = Field(60.0, gt=0, description="how often the figures are "
                                    "written to InfluxDB")


def load_event_centre_config(path: Path) -> EventCentreConfig:
    """Read and validate the config; relative paths are relative to the config file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config = EventCentreConfig.model_validate(data)
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from err
    except ValidationError as err:
        problems = "\n".join(f"  {'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                             for e in err.errors())
        raise ConfigError(f"{path}: invalid event centre config\n{problems}") from err
    paths = {name: getattr(config, name) for name in ("db_path", "catalogue_path",
                                                      "profiles_dir")}
    return config.model_copy(update={name: value if value.is_absolute() else
                                     path.parent / value for name, value in paths.items()})


class EventCentre:
    """The running service: `start()` checks and serves, `stop()` shuts down in order."""

    def __init__(self, config: EventCentreConfig) -> None:
        self.config = config
        self.store: EventStore | None = None
        self.checker: OverdueChecker | None = None
        self._publisher: MqttPublisher | None = None
        self.influx_stats: InfluxStats | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Check the catalogue, open the store, start escalations, the InfluxDB figures and
        the HTTP server."""
        config = self.config
        writer = None
        if config.influx is not None:  # secrets first: a missing one stops start-up here
            influx = config.influx
            writer = InfluxWriter(
                influx, password=secret_from_env(influx.password_env, "influx.password_env"),
                token=secret_from_env(influx.token_env, "influx.token_env"))
        catalogue = load_catalogue(config.catalogue_path)
        profiles = load_profiles(config.profiles_dir).profiles.values()
        unmapped = check_catalogue(catalogue, profiles).unmapped
        for rule, profile_ids in unmapped.items():
            log.warning("alarm rule %s (%s) is not mapped in the event catalogue: its alarms "
                        "will not become events", rule, ", ".join(profile_ids))
        self.store = EventStore(config.db_path)
        self.store.open()
        if config.broker is not None:
            broker = config.broker
            self._publisher = MqttPublisher(
                broker.host, broker.port, broker.client_id, broker.username,
                secret_from_env(broker.password_env, "broker.password_env"),
                broker.publish_timeout_s)
            self._publisher.start()
        self.checker = OverdueChecker(self.store, catalogue, self._publisher,
                                      config.overdue_check_s)
        self.checker.start()
        if writer is not None:
            assert config.influx is not None
            self.influx_stats = InfluxStats(self.store, catalogue, writer,
                                            config.stats_interval_s,
                                            config.influx.create_database)
            self.influx_stats.start()
        self._serve(create_app(self.store, catalogue), timeout_s)
        log.info("event centre on %s (%d catalogue entries, %d rules not mapped)", self.url,
                 len(catalogue.entries), len(unmapped))

    def _serve(self, app: FastAPI, timeout_s: float) -> None:
        """Bind here (a taken port fails now, with a clear error), serve in a thread."""
        config = self.config
        try:
            sock = self._socket = socket.create_server((config.host, config.port))
        except OSError as err:
            self.stop()
            raise StartupError(f"cannot listen on {self.url}: {err}") from err
        server = self._server = uvicorn.Server(uvicorn.Config(
            app, host=config.host, port=config.port, log_config=None, lifespan="off",
            access_log=config.access_log))
        self._thread = threading.Thread(target=lambda: server.run(sockets=[sock]),
                                        name="event-centre-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise StartupError(f"the HTTP server did not start on {self.url}")
            self._thread.join(0.02)

    def stop(self) -> None:
        """Stop serving, then the checker and the figures, then MQTT, then close the store."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self.checker is not None:
            self.checker.stop()
            self.checker = None
        if self.influx_stats is not None:
            self.influx_stats.stop()
            self.influx_stats = None
        if self._publisher is not None:
            self._publisher.stop()
            self._publisher = None
        if self.store is not None:
            self.store.close()
            self.store = None


def run_event_centre(config: EventCentreConfig, stop: threading.Event | None = None) -> None:
    """Serve until `stop` is set (forever when None)."""
    stop = stop or threading.Event()
    centre = EventCentre(config)
    centre.start()
    try:
        stop.wait()
    finally:
        centre.stop()
        log.info("event centre stopped")
