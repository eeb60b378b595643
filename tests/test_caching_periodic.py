"""caching/periodic.py: the one background loop of the cache sweeper and the metrics' flusher."""

from __future__ import annotations

import asyncio
import logging

import pytest

from caching.periodic import Periodic
from tests.support import let_tasks_run


@pytest.mark.asyncio
async def test_a_failing_action_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    async def action() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    loop = Periodic(action, 0.001, "the test's action")
    loop.start()
    loop.start()  # a second start is no second loop
    with caplog.at_level(logging.ERROR):
        while len(calls) < 3:
            await asyncio.sleep(0.005)
    assert loop.running and "the test's action failed" in caplog.text
    await loop.stop()
    assert not loop.running
    await loop.stop()  # stopping twice is harmless


@pytest.mark.asyncio
async def test_stop_lets_the_callers_own_cancellation_through() -> None:
    loop = Periodic(lambda: asyncio.sleep(0), 3600.0, "never")
    loop.start()
    await let_tasks_run()
    gate = asyncio.Event()

    async def stopping() -> None:
        await gate.wait()
        await loop.stop()

    caller = asyncio.create_task(stopping())
    await let_tasks_run()
    gate.set()
    await asyncio.sleep(0)  # the caller is now inside stop(), waiting for the loop to end
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert not loop.running
