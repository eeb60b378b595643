"""caching/singleflight.py: concurrent callers of one key share one computation."""

from __future__ import annotations

import asyncio

import pytest

from caching import SingleFlight
from tests.support import let_tasks_run

# --- SingleFlight ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_singleflight_runs_factory_once_for_concurrent_callers() -> None:
    flight: SingleFlight[str] = SingleFlight()
    release = asyncio.Event()
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "result"

    tasks = [asyncio.create_task(flight.do("k", compute)) for _ in range(50)]
    await let_tasks_run()
    assert flight.in_flight() == 1
    release.set()
    results = await asyncio.gather(*tasks)
    assert results == ["result"] * 50
    assert (calls, flight.calls, flight.shared, flight.in_flight()) == (1, 1, 49, 0)


@pytest.mark.asyncio
async def test_singleflight_shares_exception_and_releases_key() -> None:
    flight: SingleFlight[str] = SingleFlight()
    release = asyncio.Event()
    error = ValueError("model failed")

    async def failing() -> str:
        await release.wait()
        raise error

    tasks = [asyncio.create_task(flight.do("k", failing)) for _ in range(50)]
    await let_tasks_run()
    release.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(outcome is error for outcome in outcomes)
    assert flight.in_flight() == 0

    async def succeeding() -> str:
        return "second"

    assert await flight.do("k", succeeding) == "second"
    assert flight.calls == 2


@pytest.mark.asyncio
async def test_singleflight_cancelled_caller_does_not_cancel_shared_work() -> None:
    flight: SingleFlight[int] = SingleFlight()
    release = asyncio.Event()

    async def compute() -> int:
        await release.wait()
        return 7

    leader = asyncio.create_task(flight.do("k", compute))
    follower = asyncio.create_task(flight.do("k", compute))
    await let_tasks_run()
    leader.cancel()
    await let_tasks_run()
    release.set()
    assert await follower == 7
    assert leader.cancelled()


@pytest.mark.asyncio
async def test_singleflight_different_keys_run_separately() -> None:
    flight: SingleFlight[str] = SingleFlight()

    async def echo(text: str) -> str:
        await asyncio.sleep(0)
        return text

    results = await asyncio.gather(flight.do("a", lambda: echo("a")), flight.do("b", lambda: echo("b")))
    assert results == ["a", "b"]
    assert (flight.calls, flight.shared) == (2, 0)
