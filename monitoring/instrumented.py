"""Caches that report to Prometheus: hits and misses as they happen, evictions, expirations,
entries and bytes after every change, so the service-wide sums are exact at any moment."""

from __future__ import annotations

from caching import LayeredCache, TTLLRUCache
from monitoring.metrics import Metrics


class _Reporter:
    def __init__(self, layer: str, metrics: Metrics):
        self.layer, self.metrics = layer, metrics
        self._evictions = self._expirations = 0

    def hit_or_miss(self, value) -> None:
        counter = self.metrics.cache_misses if value is None else self.metrics.cache_hits
        counter.labels(self.layer).inc()

    def sync(self, local: TTLLRUCache) -> None:
        stats = local.stats()
        self.metrics.cache_evictions.labels(self.layer).inc(stats.evictions - self._evictions)
        self.metrics.cache_expirations.labels(self.layer).inc(stats.expirations - self._expirations)
        self._evictions, self._expirations = stats.evictions, stats.expirations
        self.metrics.cache_entries.labels(self.layer).set(stats.cache_size)
        self.metrics.cache_bytes.labels(self.layer).set(local.memory_usage_bytes)


class InstrumentedLocalCache:
    """A TTLLRUCache (thread-safe, synchronous) with metrics."""

    def __init__(self, cache: TTLLRUCache, layer: str, metrics: Metrics):
        self.cache, self._report = cache, _Reporter(layer, metrics)
        self._report.sync(cache)

    def get(self, key: str) -> bytes | None:
        value = self.cache.get(key)
        self._report.hit_or_miss(value)
        return value

    def set(self, key: str, value: bytes) -> None:
        self.cache.set(key, value)
        self._report.sync(self.cache)

    def sweep_expired(self) -> int:
        removed = self.cache.sweep_expired()
        self._report.sync(self.cache)
        return removed

    def stats(self) -> dict:
        return self.cache.stats().as_dict()


class InstrumentedLayeredCache:
    """A LayeredCache (local + optional Redis, async) with metrics; Redis failures are counted."""

    def __init__(self, cache: LayeredCache, layer: str, metrics: Metrics):
        self.cache, self.metrics, self._report = cache, metrics, _Reporter(layer, metrics)
        self._shared_errors = 0
        self._report.sync(cache.local)

    async def get(self, key: str) -> bytes | None:
        value = await self.cache.get(key)
        self._report.hit_or_miss(value)
        self._sync_shared()
        return value

    async def set(self, key: str, value: bytes) -> None:
        await self.cache.set(key, value)
        self._report.sync(self.cache.local)
        self._sync_shared()

    def _sync_shared(self) -> None:
        if self.cache.shared is not None:
            errors = self.cache.shared.errors + self.cache.shared.timeouts
            self.metrics.shared_cache_errors.inc(errors - self._shared_errors)
            self._shared_errors = errors

    def sweep_expired(self) -> int:
        removed = self.cache.sweep_expired()
        self._report.sync(self.cache.local)
        return removed

    def stats(self) -> dict:
        return self.cache.stats()
