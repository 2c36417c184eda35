"""Wires the cloud services together from config and runs them until asked to stop."""

from __future__ import annotations

import logging
import threading

from cloud_broker.config import CloudConfig, ConfigError, secret_from_env
from cloud_broker.events.outbox import Outbox
from cloud_broker.ingest.consumer import IngestService
from cloud_broker.ingest.retention import HttpInfluxQL, RetentionError, apply_retention
from cloud_broker.ingest.writer import InfluxWriter, WriteError
from cloud_broker.metrics import CloudMetrics
from cloud_broker.presence import Presence
from cloud_broker.registry.devices import DeviceCatalogue
from cloud_broker.registry.store import Registry
from cloud_broker.rules.engine import RuleEngine
from cloud_broker.rules.store import AlarmStore
from device_profiles.schema import load_profiles

log = logging.getLogger(__name__)


def build_ingest(config: CloudConfig, metrics: CloudMetrics) -> IngestService:
    profiles = load_profiles(config.profiles_dir)
    if config.registry_path is None:
        catalogue = DeviceCatalogue.from_entries(config.devices, profiles,
                                                 config.rule_overrides)
    else:
        if not config.registry_path.is_file():
            raise ConfigError(f"registry_path {config.registry_path} does not exist")
        with Registry(config.registry_path) as registry:
            catalogue = DeviceCatalogue.from_registry(registry, profiles, config.rule_overrides,
                                                      config.devices)
    influx = config.influx
    token = secret_from_env(influx.token_env, "influx.token_env")
    password = secret_from_env(influx.password_env, "influx.password_env")
    writer = InfluxWriter(influx, password=password, token=token)
    presence = Presence(catalogue, config.offline_after_intervals)
    metrics.watch_presence(presence)
    store = None
    if config.rules.state_path is not None:
        store = AlarmStore(config.rules.state_path)
        store.open()
    engine = RuleEngine(store, rules_for=lambda device: device.rules)
    outbox = None
    if config.rules.event_centre_url:
        if config.rules.outbox_path is None:
            raise ConfigError("rules.event_centre_url needs rules.outbox_path")
        outbox = Outbox(config.rules.outbox_path, config.rules.event_centre_url)
    restored = engine.restore()
    if restored:
        log.info("%d active alarms restored from %s", restored, config.rules.state_path)
    return IngestService(config, catalogue, writer, engine, presence, metrics, outbox)


def _apply_retention(config: CloudConfig, stop: threading.Event) -> None:
    """Retention policies and continuous queries (retention.py); InfluxDB 1.x API only."""
    influx = config.influx
    if not influx.retention.enabled:
        return
    if influx.api != "v1":
        log.info("influx.retention is applied through the v1 API only; on api %s create the "
                 "buckets and downsampling tasks yourself (docs/architecture.md, Retention and "
                 "downsampling) — skipped", influx.api)
        return
    client = HttpInfluxQL(influx, secret_from_env(influx.password_env, "influx.password_env"))
    while not stop.is_set():
        try:
            for action in apply_retention(client, influx.database, influx.retention):
                log.info("%s", action)
            return
        except RetentionError as err:
            if not err.retryable:
                raise ConfigError(f"influx.retention: InfluxDB refused it: {err} (fix the "
                                  "durations, or set influx.retention.enabled: false)") from err
            log.warning("InfluxDB not ready for retention policies (%s); retrying", err)
            stop.wait(1.0)


def run_cloud(config: CloudConfig, stop: threading.Event,
              metrics: CloudMetrics | None = None) -> None:
    """Run ingest and rules until `stop` is set."""
    metrics = metrics or CloudMetrics()
    service = build_ingest(config, metrics)
    if config.influx.create_database:
        while not stop.is_set():
            try:
                service.writer.create_database()
                break
            except WriteError as err:
                log.warning("InfluxDB not ready (%s); retrying", err)
                stop.wait(1.0)
    _apply_retention(config, stop)
    if config.metrics.port is not None:
        port = metrics.serve(config.metrics.host, config.metrics.port)
        log.info("metrics on http://%s:%d/metrics", config.metrics.host, port)
    service.start()
    log.info("cloud ingest running for %d devices", len(service.catalogue))
    stop.wait()
    service.stop()
    log.info("cloud ingest stopped")
