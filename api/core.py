"""Everything the routes need, built from one Settings object and the runner clients, so tests
build it in-process with runner cores instead of BentoML dependencies."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from api.prediction.families import Family, FormulaFamily, MaterialFamily
from api.prediction.feature_extractor import AsyncFeatureExtractor
from api.prediction.flow import PredictionFlow
from api.prediction.predictor import AsyncPredictor
from api.prediction.warmup import SweepPrefetch, Warmer
from api.transport.http import SERVICE_VERSION
from api.transport.repeats import RepeatMemo
from caching import ExpirySweeper, SingleFlight
from features.catalogue import FAMILIES as MATERIAL_FAMILIES
from features.catalogue import FORMULA_FAMILIES
from features.families import ALL_FAMILIES
from monitoring import report
from monitoring.instrumented import (
    InstrumentedLayeredCache,
    InstrumentedLocalCache,
    instrumented_layered,
    instrumented_local,
)
from monitoring.metrics import Metrics
from monitoring.tally import TallyFlusher
from monitoring.window import Ring
from predlog.drift import DriftReporter
from predlog.handover import HandOver
from predlog.queue import Log
from predlog.writer import PredictionLog
from settings import PredictionLogSettings, Settings


def _prediction_log(settings: PredictionLogSettings, metrics: Metrics) -> Log | None:
    """Under bentoml serve the rows are made and written by the instance's writer process, which
    the API worker hands its entries to (predlog/handover.py); elsewhere (tests, the plain
    baseline) in this process (predlog/writer.py)."""
    if not settings.enabled:
        return None
    if settings.writer_socket is not None:
        return HandOver(settings, metrics, settings.writer_socket)
    return PredictionLog(settings, metrics)


class ServiceCore:
    """Caches, feature extractor, predictor, flow and the monitoring views of one API worker."""

    MODELS_TTL_S = 10.0  # /api/v1/models is read from the store at most this often (a new model shows then)

    def __init__(
        self,
        settings: Settings,
        runners: dict[str, Any],
        root_pid: int | None = None,
        batch_rings: dict[str, Ring] | None = None,
    ):
        """``batch_rings``: the runners' rings when they run in this process (tests, the plain
        baseline); under bentoml serve the rings are read from the shared directory instead."""
        self.settings, self.metrics = settings, Metrics()
        self.monitoring = settings.monitoring
        self.rings = {f: Ring(self.monitoring.shared_dir, f) for f in ALL_FAMILIES}
        self.batch_rings = batch_rings or {}
        self.response_cache = instrumented_layered(
            "response", settings.response_cache, settings.shared_cache, self.metrics
        )
        self.feature_cache = instrumented_local("feature", settings.feature_cache, self.metrics)
        self.extractor = AsyncFeatureExtractor(self.metrics, self.feature_cache)
        self.predictor = AsyncPredictor(
            runners,
            settings.batching.max_batch_size,
            settings.batching.coalesce_in_flight,
            materialize=self.extractor.material_rows,
        )
        families: dict[str, Family] = {f: MaterialFamily(f, self.extractor) for f in MATERIAL_FAMILIES}
        families |= {f: FormulaFamily(f) for f in FORMULA_FAMILIES}
        repeats = RepeatMemo(settings.response_cache.entries) if self.response_cache is not None else None
        log_settings = settings.prediction_log
        self.prediction_log = _prediction_log(log_settings, self.metrics)
        self.warmer: Warmer | None = None  # built once the flow is (it drives it)
        self.flow = PredictionFlow(
            self.predictor,
            families,
            self.metrics,
            self.response_cache,
            self.rings,
            repeats,
            self.prediction_log,
            on_default=lambda family, tag: self._default_changed(family, tag),
        )
        self.warmer, self.sweeps = self._predictive(log_settings)
        self.drift = (
            DriftReporter(
                self.prediction_log.store,
                log_settings.drift_window_s,
                Path(log_settings.drift_reference_csv),
                self.metrics.drift,
            )
            if self.prediction_log is not None
            else None
        )
        self.sweeper = ExpirySweeper(self._caches(), self.monitoring.sweep_interval_s)
        self.flusher = TallyFlusher(self.metrics.tally)
        self.processes = report.ProcessMonitor(root_pid)
        # the /batch bodies are inflated and parsed here, off the event loop, one at a time: a flood
        # of them queues behind each other, not in front of the single predictions
        self.batch_decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-decode")
        self._models: tuple[float, dict[str, Any] | None] = (0.0, None)
        self._models_flight: SingleFlight[dict[str, Any]] = SingleFlight()

    def _predictive(self, log_settings: PredictionLogSettings) -> tuple[Warmer | None, SweepPrefetch | None]:
        """The warm-up (it reads the log) and the sweep prefetch (api/prediction/warmup.py); both put
        answers into the response cache, so neither runs without one."""
        warmer = None
        if self.prediction_log is not None and self.response_cache is not None:
            warmer = Warmer(self.flow, self.prediction_log.store, log_settings)
        sweeps = None
        if log_settings.sweep_prefetch_points > 0 and self.response_cache is not None:
            sweeps = SweepPrefetch(self.flow, log_settings.sweep_prefetch_points)
            self.flow.observers.append(sweeps.observe)
        return warmer, sweeps

    def _default_changed(self, family: str, tag: str) -> None:
        if self.warmer is not None:
            self.warmer.default_changed(family, tag)

    def _caches(self) -> list[InstrumentedLayeredCache | InstrumentedLocalCache]:
        return [c for c in (self.response_cache, self.feature_cache) if c is not None]

    def start_background(self) -> None:
        """The expiry sweeper, the metrics' flusher and the prediction log's writer, on the running loop."""
        self.sweeper.start()
        self.flusher.start()
        if self.prediction_log is not None:
            self.prediction_log.start()

    async def close(self) -> None:
        """Stop the sweeper and the flusher (which writes the last metrics), and release the caches'
        connections, files and threads (on shutdown)."""
        await self.sweeper.stop()
        if self.prediction_log is not None:
            await self.prediction_log.close()
        await self.flusher.stop()
        for cache in self._caches():
            await cache.close()
        self.batch_decoder.shutdown(wait=False, cancel_futures=True)

    async def warm_up(self) -> None:
        """Open the Redis connection before the first request needs it (a cold connect under load
        can exceed the per-call cap and start a back-off), and start the predictive warm-up
        (waited for at most PREDICTIVE_WARMUP_READY_WAIT_S)."""
        shared = self.response_cache.cache.shared if self.response_cache else None
        if shared is not None:
            await shared.ping()
        if self.warmer is not None:
            await self.warmer.start_up()

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "version": SERVICE_VERSION, "uptime_s": round(report.uptime_s(self.processes), 3)}

    # Figures of the shared layer that hold for the whole service; its hit and miss counters are
    # per process and already summed (over all workers) in the layer's own hits/misses.
    _SHARED_FIGURES = ("backend", "available", "last_error", "timeout_ms", "entries", "memory_usage_mb")

    async def _backend(self) -> dict[str, Any]:
        if self.response_cache is None:
            return {"backend": "disabled"}
        stats = await self.response_cache.stats()
        shared = {k: v for k, v in stats.get("shared", {}).items() if k in self._SHARED_FIGURES}
        return {"backend": stats["backend"], **({"shared": shared} if shared else {})}

    async def performance(self) -> dict[str, Any]:
        self.metrics.tally.flush()  # this process's figures up to now; the others' up to a second old
        figures = report.performance(
            self.metrics,
            self.monitoring.shared_dir,
            self.monitoring.performance_window_s,
            self.rings,
            self.batch_rings,
            await self._backend(),
        )
        return figures | {"prediction_log": self._log_figures()}

    def _log_figures(self) -> dict[str, Any]:
        log = self.prediction_log
        if log is None:
            return {"enabled": False}
        samples = report.read_samples(self.metrics, self.monitoring.shared_dir)
        here = {"enabled": True, "backend": log.store.backend, "queued_here": log.queued, "last_error": log.last_error}
        predictive = {
            "warmup_here": asdict(self.warmer.last) if self.warmer else None,
            "sweep_prefetched_here": self.sweeps.prefetched if self.sweeps else None,
            "sweep_copied_here": self.sweeps.copied if self.sweeps else None,
        }
        return here | report.prediction_log(samples) | predictive

    async def _cache_reachable(self) -> dict[str, Any]:
        shared = self.response_cache.cache.shared if self.response_cache else None
        if shared is None:
            # nothing outside this process to reach: reachability does not apply
            return {"backend": "memory" if self.response_cache else "disabled", "reachable": None}
        return {**(await shared.stats()), "reachable": await shared.ping()}

    async def status(self) -> dict[str, Any]:
        snapshot = await asyncio.to_thread(self.processes.snapshot)
        self.metrics.tally.flush()
        samples = report.read_samples(self.metrics, self.monitoring.shared_dir)
        return {
            "status": "ok",
            "uptime_s": report.uptime_s(self.processes),
            "resources": snapshot,
            "versions": report.versions(SERVICE_VERSION),
            "models_loaded": report.model_cache(samples),
            "cache": await self._cache_reachable(),
        }

    async def status_summary(self) -> dict[str, Any]:
        """What anyone may see when ADMIN_TOKEN is set: no paths, PIDs, versions or machine figures."""
        cache = await self._cache_reachable()
        return {
            "status": "ok",
            "uptime_s": round(report.uptime_s(self.processes), 3),
            "cache": {"backend": self.settings.shared_cache.backend, "reachable": cache.get("reachable")},
        }

    async def serving_datasets(self) -> dict[str, tuple[str, str | None]]:
        """Family -> the serving model's tag and the SHA-256 of the table it was trained on."""
        cards = {f: await self.flow.cards.default(f) for f in ALL_FAMILIES}
        return {f: (card.tag, card.metadata.get("dataset_sha256")) for f, card in cards.items()}

    async def models_summary(self) -> dict[str, Any]:
        return {f: {"serving": (await self.flow.cards.default(f)).tag} for f in ALL_FAMILIES}

    async def models(self) -> dict[str, Any]:
        """The store's listing (65-214 ms of reading every model's metadata) read at most once per
        ``MODELS_TTL_S``, concurrent callers sharing the read; the others get the last one (a flood
        of /api/v1/models took the predictions' p50 from 4.5 to 52 ms, issue 34)."""
        made, listing = self._models
        if listing is not None and time.monotonic() - made < self.MODELS_TTL_S:
            return listing
        return await self._models_flight.do("models", self._read_models)

    async def _read_models(self) -> dict[str, Any]:
        serving = {f: (await self.flow.cards.default(f)).tag for f in ALL_FAMILIES}
        listing: dict[str, Any] = await asyncio.to_thread(report.models, serving)
        self._models = (time.monotonic(), listing)
        return listing
