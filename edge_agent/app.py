"""Wires the edge agent together from its config and runs it until asked to stop."""

from __future__ import annotations

import asyncio
import logging
import time

from device_profiles.schema import Profile, ProfileSet
from edge_agent.buffer.forwarder import Forwarder, ForwarderSettings
from edge_agent.buffer.store import ReadingStore
from edge_agent.commands.executor import CommandExecutor, CommandTarget
from edge_agent.commands.ledger import CommandLedger
from edge_agent.config import GatewayConfig
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols import BusPool, create_driver
from edge_agent.protocols.base import Driver, ListenerContext, Raw, ReadingSink
from edge_agent.protocols.modbus.driver import ModbusDriver
from edge_agent.scaling import to_engineering
from edge_agent.scheduler import DevicePoller
from edge_agent.uplink.contract import Reading
from edge_agent.uplink.publisher import MqttUplink
from edge_agent.wiring import wire

log = logging.getLogger(__name__)


class HistoryTap:
    """Hands every reading to the command executor's history, then to the forwarder."""

    def __init__(self, forwarder: Forwarder, executor: CommandExecutor | None) -> None:
        self.forwarder = forwarder
        self.executor = executor

    def submit(self, device: str, profile: str, reading: Reading) -> None:
        if self.executor is not None:
            self.executor.observe(device, reading.ts, reading.values)
        self.forwarder.submit(device, profile, reading)


def make_sink(profiles_by_device: dict[str, Profile], forwarder: Forwarder | HistoryTap,
              metrics: EdgeMetrics) -> ReadingSink:
    """Where listeners hand decoded readings: scale, stamp, store and forward."""

    def sink(device_id: str, raw: dict[str, Raw], ts_ms: int | None) -> None:
        profile = profiles_by_device.get(device_id)
        if profile is None:
            metrics.frames_rejected(protocol="listener", reason="unknown_device").inc()
            return
        values = {name: to_engineering(profile.point(name), v) for name, v in raw.items()}
        ts = ts_ms if ts_ms is not None else time.time_ns() // 1_000_000
        forwarder.submit(device_id, profile.id, Reading(ts=ts, values=values))

    return sink


def _report_crash(task: asyncio.Task[None]) -> None:
    """A listener must run until cancelled; if it ends otherwise, say so loudly."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r; its devices get no readings until restart", task.get_name(),
                  task.exception())


async def publish_stats(uplink: MqttUplink, interval_s: float) -> None:
    """Every `interval_s`, the totals since start while connected (a reconnect sends them
    at once, see MqttUplink._on_connect)."""
    while True:
        await asyncio.sleep(interval_s)
        if uplink.connected.is_set():
            uplink.publish_gateway_stats()


def _command_executor(config: GatewayConfig, profiles: ProfileSet, drivers: dict[str, Driver],
                      uplink: MqttUplink, metrics: EdgeMetrics) -> CommandExecutor | None:
    """The executor of downlink commands (None when `commands.enabled` is false)."""
    settings = config.commands
    if not settings.enabled:
        return None
    assert config.buffer.path is not None, "load_gateway_config resolves the buffer path"
    ledger_path = (settings.ledger_path
                   or config.buffer.path.with_name(f"{config.gateway_id}.commands.sqlite"))
    ledger = CommandLedger(ledger_path, settings.max_ids, settings.max_age_s)
    ledger.open()
    targets = {}
    for device in config.devices:
        driver = drivers.get(device.id)
        targets[device.id] = CommandTarget(
            device.id, profiles.get(device.profile), device.name,
            driver if isinstance(driver, ModbusDriver) else None)
    return CommandExecutor(config.gateway_id, targets, ledger, uplink.publish_command_result,
                           metrics, max_per_device=settings.max_per_device,
                           readback_interval_s=settings.readback_interval_s)


async def run_edge(config: GatewayConfig, profiles: ProfileSet, stop: asyncio.Event,
                   metrics: EdgeMetrics | None = None) -> None:
    """Poll and listen to every configured device and forward readings until `stop` is set."""
    wiring = wire(config, profiles)
    for warning in wiring.warnings:
        log.warning("%s", warning)
    metrics = metrics or EdgeMetrics(config.gateway_id)
    if config.metrics.port is not None:
        port = metrics.serve(config.metrics.host, config.metrics.port)
        log.info("metrics on http://%s:%d/metrics", config.metrics.host, port)
    buffer = config.buffer
    assert buffer.path is not None, "load_gateway_config resolves the buffer path"
    store = ReadingStore(buffer.path, buffer.max_bytes, buffer.max_age_s)
    store.open()
    uplink = MqttUplink(config, metrics)
    forwarder = Forwarder(store, uplink, metrics, ForwarderSettings(
        replay_rate_per_s=buffer.replay_rate_per_s, replay_batch=buffer.replay_batch,
        max_in_flight=buffer.max_in_flight))
    uplink.on_acked = forwarder.on_acked
    pool = BusPool(metrics)
    drivers: dict[str, Driver] = {device.id: create_driver(device, params, profile, pool)
                                  for device, params, profile in wiring.polled}
    executor = _command_executor(config, profiles, drivers, uplink, metrics)
    tap = HistoryTap(forwarder, executor)
    pollers = [DevicePoller(device, profile, drivers[device.id], tap,  # type: ignore[arg-type]
                            uplink, metrics, config.unreachable_after_failures)
               for device, params, profile in wiring.polled]
    sink = make_sink({d.id: profiles.get(d.profile) for d in config.devices}, tap, metrics)
    listeners = [plugin.create(ListenerContext(settings, devices, metrics, buffer.path.parent))
                 for plugin, settings, devices in wiring.listeners]
    backlog = store.stats().readings
    if backlog:
        log.info("buffer %s holds %d readings from before; replaying them", buffer.path, backlog)
    if executor is not None:
        interrupted = executor.recover()
        if interrupted:
            log.warning("%d commands were interrupted by the last stop: reported failed",
                        interrupted)
        loop = asyncio.get_running_loop()
        uplink.on_command = lambda topic, payload: loop.call_soon_threadsafe(
            executor.handle, topic, payload)
        uplink.on_connected = lambda: loop.call_soon_threadsafe(executor.flush)
    uplink.start()
    tasks = [asyncio.create_task(p.run(), name=f"poll-{p.device.id}") for p in pollers]
    for listener in listeners:
        task = asyncio.create_task(listener.run(sink), name=f"listener-{type(listener).__name__}")
        task.add_done_callback(_report_crash)
        tasks.append(task)
    forwarding = asyncio.create_task(forwarder.run(), name="forwarder")
    tasks.append(asyncio.create_task(publish_stats(uplink, config.stats_interval_s),
                                     name="stats"))
    log.info("gateway %s: %d devices polled, %d listeners", config.gateway_id, len(pollers),
             len(listeners))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if executor is not None:
            uplink.on_command = None
            await executor.close()
            executor.ledger.close()
        await forwarder.drain(buffer.drain_timeout_s)
        forwarding.cancel()
        await asyncio.gather(forwarding, return_exceptions=True)
        await pool.close()
        await asyncio.to_thread(uplink.stop)
        left = store.stats().readings
        store.close()
        log.info("gateway %s stopped; %d readings kept in the buffer", config.gateway_id, left)
