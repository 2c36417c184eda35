"""Poll loop: read each device on its interval, scale, hand readings to the uplink.

One task per device; devices on one bus take turns through the bus lock (in the driver). A
device that fails `unreachable_after_failures` polls in a row is reported unreachable once;
its recovery is reported once. Others keep being polled. While a device is failing to connect
its retry interval doubles up to `MAX_BACKOFF_S`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from device_profiles.schema import Profile
from edge_agent.buffer.forwarder import Forwarder
from edge_agent.config import DeviceConfig
from edge_agent.errors import DeviceException, DeviceTimeout, FrameError, TransportError
from edge_agent.metrics import EdgeMetrics
from edge_agent.protocols.base import Driver
from edge_agent.scaling import to_engineering
from edge_agent.uplink.contract import Reading
from edge_agent.uplink.publisher import MqttUplink

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0


@dataclass
class DeviceHealth:
    """Consecutive failures of one device and whether it is reported unreachable."""

    failures: int = 0
    unreachable: bool = False


def classify(err: Exception) -> str:
    """Short result label of a failed poll, used in metrics and status messages."""
    if isinstance(err, DeviceTimeout):
        return "timeout"
    if isinstance(err, DeviceException):
        return "exception"
    if isinstance(err, FrameError):
        return "decode_error"
    return "connection"


class DevicePoller:
    """Polls one device forever (until cancelled)."""

    def __init__(self, device: DeviceConfig, profile: Profile, driver: Driver,
                 forwarder: Forwarder, uplink: MqttUplink, metrics: EdgeMetrics,
                 unreachable_after: int) -> None:
        self.device = device
        self.profile = profile
        self.driver = driver
        self.forwarder = forwarder
        self.uplink = uplink
        self.metrics = metrics
        self.unreachable_after = unreachable_after
        self.health = DeviceHealth()
        self.interval_s = device.interval_s or profile.poll_interval_s

    async def poll_once(self) -> Reading | None:
        """Read, scale, store and forward one reading; None when the device failed."""
        try:
            raw = await self.driver.read()
        except (TransportError, FrameError) as err:
            self._failed(err)
            return None
        ts = time.time_ns() // 1_000_000
        values = {name: to_engineering(self.profile.point(name), v) for name, v in raw.items()}
        self._succeeded()
        reading = Reading(ts=ts, values=values)
        self.forwarder.submit(self.device.id, self.profile.id, reading)
        return reading

    def _failed(self, err: Exception) -> None:
        result = classify(err)
        self.metrics.polls(device=self.device.id, result=result).inc()
        self.health.failures += 1
        if not self.health.unreachable and self.health.failures >= self.unreachable_after:
            self.health.unreachable = True
            self.metrics.devices_unreachable.inc()
            log.warning("device %s unreachable after %d failed polls: %s", self.device.id,
                        self.health.failures, err)
            self.uplink.publish_device_status(self.device.id, "unreachable", f"{result}: {err}",
                                              self.health.failures)

    def _succeeded(self) -> None:
        self.metrics.polls(device=self.device.id, result="ok").inc()
        if self.health.unreachable:
            self.metrics.devices_unreachable.dec()
            log.info("device %s answers again after %d failed polls", self.device.id,
                     self.health.failures)
            self.uplink.publish_device_status(self.device.id, "online", "", 0)
        self.health = DeviceHealth()

    def _next_delay(self) -> float:
        if self.health.failures == 0:
            return self.interval_s
        return min(MAX_BACKOFF_S, self.interval_s * 2 ** max(0, self.health.failures - 3))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        task = asyncio.current_task()
        while True:
            await self.poll_once()
            if task is not None and task.cancelling():  # a driver swallowed the cancellation
                raise asyncio.CancelledError()
            delay = self._next_delay()
            next_at += delay
            now = loop.time()
            if next_at < now:  # a slow poll: skip missed ticks instead of bursting
                next_at = now + delay - (now - next_at) % delay
            await asyncio.sleep(next_at - now)
