"""Per-device ordering: commands to one device run one at a time in arrival order, commands to
different devices run concurrently. Each device's queue is bounded; a full queue refuses at
once (`DeviceQueueFull`, with reasons for the result) rather than making the command wait
towards its expiry. A device's worker task exists only while it has work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
Job = Callable[[], Awaitable[Any]]


class DeviceQueueFull(Exception):
    """The device already has `limit` commands waiting or running."""

    def __init__(self, device: str, limit: int) -> None:
        self.device = device
        self.limit = limit
        self.reason_zh = f"设备 {device} 已有 {limit} 条命令在排队或执行，拒绝新命令，请稍后重试"
        self.reason_en = f"device {device} already has {limit} commands queued or running"
        super().__init__(self.reason_en)


class DeviceQueues:
    def __init__(self, max_per_device: int = 16) -> None:
        if max_per_device < 1:
            raise ValueError("max_per_device must be at least 1")
        self.max_per_device = max_per_device
        self._queues: dict[str, deque[tuple[Job, asyncio.Future[Any]]]] = {}
        self._running: dict[str, int] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, device: str, job: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """Queue `job` for `device`; the future resolves with its result (or exception).
        Raises DeviceQueueFull when the device has `max_per_device` jobs waiting or running.
        Cancelling the future before the job starts skips it."""
        if self.pending(device) >= self.max_per_device:
            raise DeviceQueueFull(device, self.max_per_device)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(device, deque()).append((job, future))
        if device not in self._workers:
            self._workers[device] = asyncio.create_task(self._work(device),
                                                        name=f"commands-{device}")
        return future

    def pending(self, device: str) -> int:
        """Jobs of `device` waiting or running."""
        return len(self._queues.get(device, ())) + self._running.get(device, 0)

    async def _work(self, device: str) -> None:
        queue = self._queues[device]
        try:
            while queue:
                job, future = queue.popleft()
                if future.done():  # cancelled while waiting
                    continue
                self._running[device] = 1
                try:
                    result = await job()
                except asyncio.CancelledError:
                    future.cancel()
                    raise
                except Exception as err:  # the job's failure belongs to its submitter
                    if not future.done():
                        future.set_exception(err)
                else:
                    if not future.done():
                        future.set_result(result)
                finally:
                    self._running[device] = 0
        finally:
            for _, future in queue:
                future.cancel()
            self._queues.pop(device, None)
            self._running.pop(device, None)
            self._workers.pop(device, None)

    async def close(self) -> None:
        """Cancel every worker (running jobs are cancelled, waiting ones with them)."""
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A worker cancelled before it first ran never reached its own clean-up.
        for queue in self._queues.values():
            for _, future in queue:
                future.cancel()
        self._queues.clear()
        self._running.clear()
        self._workers.clear()
