"""caching/sweeper.py: the background sweep of expired entries."""

from __future__ import annotations

import asyncio

import pytest

from caching import ExpirySweeper, LayeredCache
from tests.support import FakeClock, let_tasks_run, make_cache

# --- ExpirySweeper -------------------------------------------------------------------------------


class ManualSleep:
    """Stands in for asyncio.sleep: each call blocks until the test calls tick()."""

    def __init__(self) -> None:
        self.requested: list[float] = []
        self._gate = asyncio.Semaphore(0)

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        await self._gate.acquire()

    def tick(self) -> None:
        self._gate.release()


@pytest.mark.asyncio
async def test_sweeper_sweeps_every_cache_each_interval_and_stops() -> None:
    clock = FakeClock()
    caches = [LayeredCache(make_cache(clock, ttl_seconds=1.0)), LayeredCache(make_cache(clock, ttl_seconds=1.0))]
    await caches[0].set("a", b"1")
    await caches[1].set("b", b"2")
    clock.advance(2.0)
    sleep = ManualSleep()
    sweeper = ExpirySweeper(caches, interval_s=30.0, sleep=sleep)
    sweeper.start()
    sweeper.start()  # second start is a no-op, not a second loop
    await let_tasks_run()
    assert (sweeper.sweeps, sleep.requested) == (0, [30.0])
    sleep.tick()
    await let_tasks_run()
    assert (sweeper.sweeps, sweeper.removed) == (1, 2)
    assert [c.local.stats().expirations for c in caches] == [1, 1]
    await sweeper.stop()
    assert not sweeper.running
    await sweeper.stop()  # stopping twice is harmless


@pytest.mark.asyncio
async def test_sweeper_survives_a_failing_cache() -> None:
    class Broken:
        async def sweep_expired(self) -> int:
            raise RuntimeError("boom")

    sleep = ManualSleep()
    sweeper = ExpirySweeper([Broken()], interval_s=1.0, sleep=sleep)
    sweeper.start()
    sleep.tick()
    await let_tasks_run()
    assert sweeper.running
    assert len(sleep.requested) == 2
    await sweeper.stop()
