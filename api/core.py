"""Everything the routes need, built from one Settings object and the runner clients, so tests
build it in-process with runner cores instead of BentoML dependencies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from api.feature_extractor import AsyncFeatureExtractor
from api.flow import PredictionFlow
from api.http import SERVICE_VERSION
from api.predictor import AsyncPredictor
from caching import ExpirySweeper, LayeredCache, MachineCache, RedisCache, TTLLRUCache
from features.featurizer import FAMILIES
from monitoring import report
from monitoring.instrumented import InstrumentedLayeredCache, InstrumentedLocalCache
from monitoring.metrics import Metrics
from monitoring.window import Ring
from settings import Settings


def response_cache(settings: Settings, metrics: Metrics) -> InstrumentedLayeredCache | None:
    if not settings.enable_response_caching:
        return None
    local = TTLLRUCache(
        max_entries=settings.response_cache_size,
        ttl_seconds=settings.response_cache_ttl,
        max_memory_bytes=int(settings.response_cache_max_mb * 1e6),
    )
    return InstrumentedLayeredCache(LayeredCache(local, _shared_response_layer(settings)), "response", metrics)


def _shared_response_layer(settings: Settings) -> RedisCache | MachineCache | None:
    """Redis across instances; else, under bentoml serve, a SQLite file shared by this machine's workers."""
    if settings.cache_backend == "redis":
        return RedisCache(
            settings.redis_url, timeout_s=settings.redis_timeout_ms / 1e3, ttl_seconds=settings.response_cache_ttl
        )
    if settings.machine_shared_cache and settings.prometheus_multiproc_dir:
        return MachineCache(
            Path(settings.prometheus_multiproc_dir) / "armor_response_cache.sqlite",
            max_entries=settings.response_cache_size * 10,
            ttl_seconds=settings.response_cache_ttl,
            max_bytes=int(settings.response_cache_max_mb * 1e6) * 4,
        )
    return None


def feature_cache(settings: Settings, metrics: Metrics) -> InstrumentedLocalCache | None:
    if not settings.enable_feature_caching:
        return None
    local = TTLLRUCache(
        max_entries=settings.feature_cache_size,
        ttl_seconds=settings.feature_cache_ttl,
        max_memory_bytes=int(settings.feature_cache_max_mb * 1e6),
    )
    return InstrumentedLocalCache(local, "feature", metrics)


class ServiceCore:
    """Caches, feature extractor, predictor, flow and the monitoring views of one API worker."""

    def __init__(
        self, settings: Settings, runners: dict, root_pid: int | None = None, batch_rings: dict[str, Ring] | None = None
    ):
        """``batch_rings``: the runners' rings when they run in this process (tests, the plain
        baseline); under bentoml serve the rings are read from the shared directory instead."""
        self.settings, self.metrics = settings, Metrics()
        shared = settings.prometheus_multiproc_dir
        self.rings = {f: Ring(shared, f) for f in FAMILIES}
        self.batch_rings = batch_rings or {}
        self.response_cache = response_cache(settings, self.metrics)
        self.feature_cache = feature_cache(settings, self.metrics)
        self.predictor = AsyncPredictor(runners)
        self.extractor = AsyncFeatureExtractor(self.metrics, self.feature_cache, settings.feature_extraction_workers)
        self.flow = PredictionFlow(self.predictor, self.extractor, self.metrics, self.response_cache, self.rings)
        self.sweeper = ExpirySweeper(
            [c for c in (self.response_cache, self.feature_cache) if c], settings.sweep_interval_s
        )
        self.processes = report.ProcessMonitor(root_pid)

    async def warm_up(self) -> None:
        """Open the Redis connection before the first request needs it (a cold connect under load
        can exceed the per-call cap and start a back-off)."""
        shared = self.response_cache.cache.shared if self.response_cache else None
        if shared is not None:
            await shared.ping()

    def health(self) -> dict:
        return {"status": "ok", "version": SERVICE_VERSION, "uptime_s": round(report.uptime_s(self.processes), 3)}

    # Figures of the shared layer that hold for the whole service; its hit and miss counters are
    # per process and already summed (over all workers) in the layer's own hits/misses.
    _SHARED_FIGURES = ("backend", "available", "last_error", "timeout_ms", "entries", "memory_usage_mb")

    def _backend(self) -> dict:
        if self.response_cache is None:
            return {"backend": "disabled"}
        stats = self.response_cache.stats()
        shared = {k: v for k, v in stats.get("shared", {}).items() if k in self._SHARED_FIGURES}
        return {"backend": stats["backend"], **({"shared": shared} if shared else {})}

    def performance(self) -> dict:
        return report.performance(
            self.metrics,
            self.settings.prometheus_multiproc_dir,
            self.settings.performance_window_s,
            self.rings,
            self.batch_rings,
            self._backend(),
        )

    async def _cache_reachable(self) -> dict:
        shared = self.response_cache.cache.shared if self.response_cache else None
        if shared is None:
            # nothing outside this process to reach: reachability does not apply
            return {"backend": "memory" if self.response_cache else "disabled", "reachable": None}
        return {**shared.stats(), "reachable": await shared.ping()}

    async def status(self) -> dict:
        snapshot = await asyncio.to_thread(self.processes.snapshot)
        samples = report.read_samples(self.metrics, self.settings.prometheus_multiproc_dir)
        return {
            "status": "ok",
            "uptime_s": report.uptime_s(self.processes),
            "resources": snapshot,
            "versions": report.versions(SERVICE_VERSION),
            "models_loaded": report.model_cache(samples),
            "cache": await self._cache_reachable(),
        }

    async def status_summary(self) -> dict:
        """What anyone may see when ADMIN_TOKEN is set: no paths, PIDs, versions or machine figures."""
        cache = await self._cache_reachable()
        return {
            "status": "ok",
            "uptime_s": round(report.uptime_s(self.processes), 3),
            "cache": {"backend": self.settings.cache_backend, "reachable": cache.get("reachable")},
        }

    async def models_summary(self) -> dict:
        return {f: {"serving": (await self.flow.cards.default(f)).tag} for f in FAMILIES}

    async def models(self) -> dict:
        serving = {f: (await self.flow.cards.default(f)).tag for f in FAMILIES}
        return await asyncio.to_thread(report.models, serving)
