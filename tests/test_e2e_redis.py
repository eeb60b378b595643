"""Two service instances (in-process ServiceCores, each with its own local layer) on one real
redis-server: a request answered by one is a hit on the other; Redis stopped mid-run fails no
request; Redis back, shared hits resume."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from api.prediction.schemas import PredictionRequest
from tests.support import RedisServer, free_port, require_redis_server

EXAMPLE = json.loads((Path(__file__).parent / "testdata" / "example_request.json").read_text())


def material(i: int) -> PredictionRequest:
    return PredictionRequest.model_validate(
        {**EXAMPLE, "processing": {**EXAMPLE["processing"], "sintering_temperature": 1300 + i}}
    )


@pytest.fixture
def redis_server():
    server = RedisServer(require_redis_server(), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def two_instances(make_core, redis_server):
    return [make_core(cache_backend="redis", redis_url=redis_server.url) for _ in range(2)]


def shared(core):
    return core.response_cache.cache.shared


def test_a_hit_on_one_instance_is_shared_with_the_other(two_instances):
    first, second = two_instances

    async def both():
        return (
            await first.flow.predict("mechanical", material(1)),
            await second.flow.predict("mechanical", material(1)),
        )

    a, b = asyncio.run(both())
    assert (a["cached"], b["cached"]) == (False, True)
    assert b["predictions"] == a["predictions"]
    assert shared(second).hits == 1
    assert asyncio.run(second.performance())["response_cache"]["shared"]["backend"] == "redis"


def test_redis_stopped_mid_run_fails_no_request_then_sharing_resumes(two_instances, redis_server):
    first, second = two_instances
    backoff = shared(first)._backoff_initial_s
    for core in two_instances:  # short back-off so the test needs no long waits
        shared(core)._backoff_initial_s = shared(core)._backoff_s = 0.2

    async def traffic(start: int, count: int) -> list[dict]:
        return [
            await (first if i % 2 else second).flow.predict("mechanical", material(start + i % 7)) for i in range(count)
        ]

    async def scenario():
        before = await traffic(0, 20)
        redis_server.stop()
        started = time.perf_counter()
        during = await traffic(100, 40)
        elapsed = time.perf_counter() - started
        redis_server.start()
        await asyncio.sleep(0.5)  # past the back-off
        await first.flow.predict("mechanical", material(500))
        resumed = await second.flow.predict("mechanical", material(500))
        return before, during, elapsed, resumed

    before, during, elapsed, resumed = asyncio.run(scenario())
    assert len(before) == 20 and len(during) == 40 and all("predictions" in body for body in during)
    failures = sum(shared(c).errors + shared(c).timeouts for c in two_instances)
    assert failures >= 1 and shared(first).last_error in ("ConnectionError", "TimeoutError", "OSError")
    print(f"40 requests with Redis down in {elapsed:.2f} s; first instance: {asyncio.run(shared(first).stats())}")
    assert resumed["cached"] is True and shared(second).available
    assert backoff == 1.0
