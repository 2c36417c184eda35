"""Wires the edge agent together from its config and runs it until asked to stop."""

from __future__ import annotations

import asyncio
import logging

from device_profiles.schema import ProfileSet
from edge_agent.config import GatewayConfig
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols import BusPool, create_driver
from edge_agent.scheduler import DevicePoller
from edge_agent.uplink.publisher import MqttUplink

log = logging.getLogger(__name__)


async def run_edge(config: GatewayConfig, profiles: ProfileSet, stop: asyncio.Event,
                   metrics: EdgeMetrics | None = None) -> None:
    """Poll every configured device and publish until `stop` is set."""
    metrics = metrics or EdgeMetrics(config.gateway_id)
    if config.metrics.port is not None:
        port = metrics.serve(config.metrics.host, config.metrics.port)
        log.info("metrics on http://%s:%d/metrics", config.metrics.host, port)
    uplink = MqttUplink(config, metrics)
    pool = BusPool()
    pollers = [
        DevicePoller(device, profiles.get(device.profile),
                     create_driver(device, profiles.get(device.profile), pool), uplink, metrics,
                     config.unreachable_after_failures)
        for device in config.devices
    ]
    uplink.start()
    tasks = [asyncio.create_task(p.run(), name=f"poll-{p.device.id}") for p in pollers]
    log.info("gateway %s polling %d devices", config.gateway_id, len(pollers))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pool.close()
        await asyncio.to_thread(uplink.stop)
        log.info("gateway %s stopped", config.gateway_id)
