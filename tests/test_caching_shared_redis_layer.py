"""Tests for caching.shared.redis_layer and caching.layered against a real redis-server.

Each test gets its own redis-server on a free port (no persistence). Back-off
waits are driven by an injected clock; only Redis start-up is waited for.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import pytest

from caching import LayeredCache, RedisCache, TTLLRUCache
from tests.support import PROMPT_S, FakeClock, RedisServer, free_port, require_redis_server  # noqa: F401

T = TypeVar("T")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(require_redis_server(), free_port())
    server.start()
    yield server
    server.stop()


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await call
    return result, time.perf_counter() - start


def layered(server: RedisServer, clock: FakeClock) -> LayeredCache:
    return LayeredCache(TTLLRUCache(), RedisCache(server.url, key_prefix="t:", clock=clock))


@pytest.mark.asyncio
async def test_round_trip_hits_misses_and_ttl(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, key_prefix="t:", ttl_seconds=30.0)
    assert await cache.set("k", b"\x00payload") is True
    assert await cache.get("k") == b"\x00payload"
    assert await cache.get("absent") is None
    assert await cache.ping() is True
    raw = redis_server.raw_client()
    assert 0 < raw.pttl("t:k") <= 30_000
    raw.close()
    stats = await cache.stats()
    assert (stats["hits"], stats["misses"], stats["errors"], stats["available"]) == (
        1,
        1,
        0,
        True,
    )
    await cache.close()


@pytest.mark.asyncio
async def test_two_layered_caches_share_through_redis(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()
    writer, reader = layered(redis_server, clock), layered(redis_server, clock)
    await writer.set("k", b"v")
    assert await reader.get("k") == b"v"  # local miss, Redis hit
    assert await reader.get("k") == b"v"  # now filled locally
    stats = await reader.stats()
    assert stats["backend"] == "redis"
    assert (stats["hits"], stats["misses"], stats["cache_size"]) == (1, 1, 1)
    assert stats["shared"]["hits"] == 1
    await writer.close()
    await reader.close()


@pytest.mark.asyncio
async def test_peek_reads_without_counting_a_hit_or_miss_and_backs_off_like_get(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()
    cache = RedisCache(redis_server.url, key_prefix="t:", clock=clock)
    await cache.set("k", b"v")
    assert (await cache.peek("k"), await cache.peek("absent")) == (b"v", None)
    assert (cache.hits, cache.misses) == (0, 0)
    redis_server.stop()
    assert (await cache.peek("k"), await cache.peek("k")) == (None, None)
    assert (cache.errors, cache.skipped, cache.hits, cache.misses) == (1, 1, 0, 0)
    await cache.close()


@pytest.mark.asyncio
async def test_fill_local_copies_a_redis_hit_into_the_local_layer_uncounted(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()
    writer, reader = layered(redis_server, clock), layered(redis_server, clock)
    await writer.set("k", b"v")
    assert await reader.fill_local("k") is True and reader.local.holds("k")
    assert await reader.fill_local("absent") is False
    assert await reader.get("k") == b"v"  # a local hit: Redis is not asked
    stats = await reader.stats()
    assert (stats["hits"], stats["misses"], stats["shared"]["hits"], stats["shared"]["misses"]) == (1, 0, 0, 0)
    await writer.close()
    await reader.close()


@pytest.mark.asyncio
async def test_redis_down_degrades_fast_and_backs_off(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()
    cache = RedisCache(redis_server.url, clock=clock)
    assert await cache.set("k", b"v") is True
    redis_server.stop()
    durations = []
    for _ in range(3):
        value, get_s = await timed(cache.get("k"))
        stored, set_s = await timed(cache.set("k", b"v"))
        assert (value, stored) == (None, False)
        durations += [get_s, set_s]
    print(f"redis down: call durations ms = {[round(d * 1000, 1) for d in durations]}")
    assert max(durations) < PROMPT_S
    stats = await cache.stats()
    assert (stats["errors"], stats["skipped"], stats["available"]) == (1, 5, False)
    assert stats["last_error"] == "ConnectionError"
    clock.advance(1.0)  # first back-off (1 s) over: one real attempt, then 2 s
    assert await cache.get("k") is None
    clock.advance(1.0)
    assert await cache.get("k") is None
    assert (cache.errors, cache.skipped) == (2, 6)
    await cache.close()


@pytest.mark.asyncio
async def test_unresponsive_redis_times_out_within_cap(
    redis_server: RedisServer,
) -> None:
    cache = RedisCache(redis_server.url, clock=FakeClock())
    assert await cache.set("k", b"v") is True
    redis_server.freeze()
    try:
        value, get_s = await timed(cache.get("k"))
        pong, ping_s = await timed(cache.ping())
    finally:
        redis_server.thaw()
    print(f"redis frozen: get {get_s * 1000:.1f} ms, ping {ping_s * 1000:.1f} ms")
    assert (value, pong) == (None, False)
    assert max(get_s, ping_s) < PROMPT_S
    assert (cache.timeouts, cache.errors, cache.last_error) == (2, 0, "TimeoutError")
    assert await cache.ping() is True  # ping ignores back-off; thawed server answers
    await cache.close()


@pytest.mark.asyncio
async def test_pooled_connection_survives_silent_restart(
    redis_server: RedisServer,
) -> None:
    cache = RedisCache(redis_server.url, clock=FakeClock())
    assert await cache.set("k", b"v") is True  # leaves a pooled socket
    redis_server.stop()
    redis_server.start()
    assert await cache.set("k", b"v2") is True  # dead socket replaced, not reported
    assert await cache.get("k") == b"v2"
    assert (cache.errors, cache.timeouts) == (0, 0)
    await cache.close()


@pytest.mark.asyncio
async def test_reconnects_after_restart_and_shared_hits_resume(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()
    writer, reader = layered(redis_server, clock), layered(redis_server, clock)
    await writer.set("before", b"1")
    assert await reader.get("before") == b"1"
    redis_server.stop()
    await writer.set("during", b"2")
    assert await reader.get("during") is None
    redis_server.start()
    assert await reader.get("during") is None  # still inside the back-off: skipped
    assert (await reader.stats())["shared"]["skipped"] == 1
    clock.advance(1.0)
    await writer.set("after", b"3")
    assert await reader.get("after") == b"3"
    shared = (await reader.stats())["shared"]
    assert (shared["hits"], shared["errors"], shared["available"]) == (2, 1, True)
    assert (await writer.stats())["shared"]["available"] is True
    await writer.close()
    await reader.close()
