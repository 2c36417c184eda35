"""Commands to one device run in arrival order, one at a time; devices run concurrently; a full
device queue refuses at once."""

from __future__ import annotations

import asyncio

import pytest

from edge_agent.commands.queues import DeviceQueueFull, DeviceQueues


async def test_one_device_runs_in_arrival_order_one_at_a_time() -> None:
    queues, log = DeviceQueues(max_per_device=10), []

    def job(n: int):
        async def run() -> int:
            log.append(("start", n))
            for _ in range(10 - n):  # earlier jobs yield more: overlap would reorder the log
                await asyncio.sleep(0)
            log.append(("end", n))
            return n * 10
        return run

    futures = [queues.submit("pump-1", job(n)) for n in range(6)]
    assert await asyncio.gather(*futures) == [0, 10, 20, 30, 40, 50]
    assert log == [(edge, n) for n in range(6) for edge in ("start", "end")]
    assert queues.pending("pump-1") == 0


async def test_different_devices_run_concurrently() -> None:
    queues = DeviceQueues()
    b_started = asyncio.Event()

    async def on_a() -> str:
        await b_started.wait()  # only finishes if b runs while a is still running
        return "a"

    async def on_b() -> str:
        b_started.set()
        return "b"

    a, b = queues.submit("pump-1", on_a), queues.submit("pole-7", on_b)
    assert await asyncio.wait_for(asyncio.gather(a, b), timeout=5) == ["a", "b"]


async def test_a_full_device_queue_refuses_with_a_reason_other_devices_unaffected() -> None:
    queues = DeviceQueues(max_per_device=2)
    release = asyncio.Event()

    async def blocked() -> None:
        await release.wait()

    async def quick() -> str:
        return "ok"

    held = [queues.submit("pump-1", blocked), queues.submit("pump-1", blocked)]
    with pytest.raises(DeviceQueueFull) as info:
        queues.submit("pump-1", quick)
    assert info.value.device == "pump-1" and info.value.limit == 2
    assert "已有 2 条命令在排队或执行" in info.value.reason_zh
    assert await asyncio.wait_for(queues.submit("pole-7", quick), timeout=5) == "ok"
    release.set()
    await asyncio.wait_for(asyncio.gather(*held), timeout=5)
    assert await asyncio.wait_for(queues.submit("pump-1", quick), timeout=5) == "ok"


async def test_a_failing_job_fails_its_future_and_the_next_one_still_runs() -> None:
    queues = DeviceQueues()

    async def boom() -> None:
        raise RuntimeError("device said no")

    async def fine() -> str:
        return "next"

    failed, after = queues.submit("pump-1", boom), queues.submit("pump-1", fine)
    with pytest.raises(RuntimeError, match="device said no"):
        await failed
    assert await after == "next"


async def test_a_job_cancelled_while_waiting_is_skipped_and_close_cancels_the_rest() -> None:
    queues, ran = DeviceQueues(), []
    release = asyncio.Event()

    async def first() -> None:
        await release.wait()

    async def mark(name: str) -> None:
        ran.append(name)

    running = queues.submit("pump-1", first)
    skipped = queues.submit("pump-1", lambda: mark("skipped"))
    kept = queues.submit("pump-1", lambda: mark("kept"))
    skipped.cancel()
    release.set()
    await asyncio.wait_for(kept, timeout=5)
    assert ran == ["kept"] and running.done()

    stuck = queues.submit("pump-1", asyncio.Event().wait)
    waiting = queues.submit("pump-1", lambda: mark("never"))
    await queues.close()
    assert stuck.cancelled() and waiting.cancelled() and ran == ["kept"]
