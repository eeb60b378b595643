"""monitoring/instrumented.py: cache events reach Prometheus through the metrics' tally."""

from monitoring.instrumented import instrumented_local
from monitoring.metrics import Metrics
from monitoring.report import read_samples
from settings import CacheLayerSettings


def sample(metrics: Metrics, name: str, layer: str) -> float:
    metrics.tally.flush()
    return read_samples(metrics, None).get((name, (("layer", layer),)), 0.0)


def test_evictions_hits_and_size_are_published_without_copying_counters():
    metrics = Metrics()
    cache = instrumented_local("feature", CacheLayerSettings(True, 2, 60.0, 1.0), metrics)
    assert cache is not None and sample(metrics, "armor_cache_entries", "feature") == 0
    for key in ("a", "b", "c"):
        cache.set(key, b"value")
    assert cache.get("c") == b"value" and cache.get("a") is None
    assert sample(metrics, "armor_cache_evictions_total", "feature") == 1
    assert sample(metrics, "armor_cache_entries", "feature") == 2
    assert (
        sample(metrics, "armor_cache_hits_total", "feature"),
        sample(metrics, "armor_cache_misses_total", "feature"),
    ) == (1, 1)
    assert sample(metrics, "armor_cache_memory_bytes", "feature") == cache.cache.memory_usage_bytes


def test_a_switched_off_layer_is_not_built():
    assert instrumented_local("feature", CacheLayerSettings(False, 2, 60.0, 1.0), Metrics()) is None


def test_the_gauges_are_written_once_a_flush_with_the_last_size() -> None:
    metrics = Metrics()
    cache = instrumented_local("feature", CacheLayerSettings(True, 2, 60.0, 1.0), metrics)
    assert cache is not None
    writes: list[float] = []
    gauge = metrics.cache_bytes.labels("feature")
    original = gauge.set
    gauge.set = lambda value: (writes.append(value), original(value))[1]  # type: ignore[method-assign]
    for key in ("a", "b", "c", "d", "e"):
        cache.set(key, b"value")
    cache.set("f", b"longer value")
    assert writes == []  # nothing written between flushes
    metrics.tally.flush()
    assert writes == [cache.cache.memory_usage_bytes]
    assert sample(metrics, "armor_cache_memory_bytes", "feature") == cache.cache.memory_usage_bytes


def test_a_shared_layer_failure_of_the_warm_ups_look_up_is_published_at_once():
    """``fill_local`` (the warm-up's look-up, api/prediction/flow.py) counts a failure of the shared
    layer in the service-wide counter, as ``get`` and ``set`` do."""
    import asyncio

    from caching import LayeredCache, RedisCache, TTLLRUCache
    from monitoring.instrumented import CacheReporter, InstrumentedLayeredCache
    from tests.support import RedisServer, free_port, require_redis_server

    server = RedisServer(require_redis_server(), free_port())
    server.start()
    metrics = Metrics()
    cache = InstrumentedLayeredCache(
        LayeredCache(TTLLRUCache(), RedisCache(server.url, key_prefix="t:")),
        CacheReporter("response", metrics),
        metrics,
    )
    server.stop()

    async def look() -> bool:
        found = await cache.fill_local("k")
        await cache.close()
        return found

    assert asyncio.run(look()) is False
    assert metrics.shared_cache_errors._value.get() == 1
