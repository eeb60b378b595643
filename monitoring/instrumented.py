"""Caches that report to Prometheus: hits and misses where they are decided, removals and sizes
through the cache's observer hook (so counters are never copied afterwards), gathered by the
metrics' tally and written once a second (monitoring/tally.py), and failures of the shared layer."""

from __future__ import annotations

from typing import Any, Literal

from caching import LayeredCache, TTLLRUCache, local_cache, shared_layer
from monitoring.metrics import Metrics
from settings import CacheLayerSettings, SharedCacheSettings


class CacheReporter:
    """The Prometheus side of one cache layer (caching.lru.CacheObserver, plus hits and misses),
    through the metrics' tally: every event is counted, the series are written once a second
    (monitoring/tally.py)."""

    def __init__(self, layer: str, metrics: Metrics):
        self._tally = metrics.tally
        # the layer's series, looked up once: several are touched on every request
        self._hits, self._misses = metrics.cache_hits.labels(layer), metrics.cache_misses.labels(layer)
        self._evictions, self._expirations = (
            metrics.cache_evictions.labels(layer),
            metrics.cache_expirations.labels(layer),
        )
        self._entries, self._bytes = metrics.cache_entries.labels(layer), metrics.cache_bytes.labels(layer)

    def hit_or_miss(self, value: bytes | None) -> None:
        self._tally.inc(self._misses if value is None else self._hits)

    def removed(self, reason: Literal["evicted", "expired"], count: int) -> None:
        self._tally.inc(self._evictions if reason == "evicted" else self._expirations, count)

    def resized(self, entries: int, memory_bytes: int) -> None:
        """The gauges take the last size of the second."""
        self._tally.set(self._entries, entries)
        self._tally.set(self._bytes, memory_bytes)


class InstrumentedLocalCache:
    """A TTLLRUCache (thread-safe, synchronous) with metrics."""

    def __init__(self, cache: TTLLRUCache, reporter: CacheReporter):
        self.cache, self._report = cache, reporter

    def get(self, key: str) -> bytes | None:
        value = self.cache.get(key)
        self._report.hit_or_miss(value)
        return value

    def set(self, key: str, value: bytes) -> None:
        self.cache.set(key, value)

    async def sweep_expired(self) -> int:
        return self.cache.sweep_expired()

    def stats(self) -> dict[str, Any]:
        return self.cache.stats().as_dict()

    async def close(self) -> None:
        """Nothing outside this process to release."""


class InstrumentedLayeredCache:
    """A LayeredCache (local + optional shared layer, async) with metrics; failures of the shared
    layer are counted."""

    def __init__(self, cache: LayeredCache, reporter: CacheReporter, metrics: Metrics):
        self.cache, self.metrics, self._report = cache, metrics, reporter
        self._shared_errors = 0

    async def get(self, key: str) -> bytes | None:
        value = await self.cache.get(key)
        self._report.hit_or_miss(value)
        self._count_shared_failures()
        return value

    async def set(self, key: str, value: bytes) -> None:
        await self.cache.set(key, value)
        self._count_shared_failures()

    async def fill_local(self, key: str) -> bool:
        """``LayeredCache.fill_local`` (no hit or miss counted), its shared layer's failures counted."""
        found = await self.cache.fill_local(key)
        self._count_shared_failures()
        return found

    def _count_shared_failures(self) -> None:
        """The shared layer never raises; its failure counters grow instead. Published as one
        service-wide counter (the layer's own counters are per process)."""
        if self.cache.shared is not None:
            errors = self.cache.shared.errors + self.cache.shared.timeouts
            self.metrics.shared_cache_errors.inc(errors - self._shared_errors)
            self._shared_errors = errors

    async def sweep_expired(self) -> int:
        return await self.cache.sweep_expired()

    async def stats(self) -> dict[str, Any]:
        return await self.cache.stats()

    async def close(self) -> None:
        await self.cache.close()


def instrumented_local(layer: str, settings: CacheLayerSettings, metrics: Metrics) -> InstrumentedLocalCache | None:
    """The one way an in-process cache layer (feature, prediction) is built."""
    reporter = CacheReporter(layer, metrics)
    cache = local_cache(settings, reporter)
    if cache is None:
        return None
    reporter.resized(0, 0)
    return InstrumentedLocalCache(cache, reporter)


def instrumented_layered(
    layer: str, settings: CacheLayerSettings, shared: SharedCacheSettings, metrics: Metrics
) -> InstrumentedLayeredCache | None:
    """The one way the response cache (local in front of the shared layer) is built."""
    reporter = CacheReporter(layer, metrics)
    cache = local_cache(settings, reporter)
    if cache is None:
        return None
    reporter.resized(0, 0)
    return InstrumentedLayeredCache(LayeredCache(cache, shared_layer(shared)), reporter, metrics)
