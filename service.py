"""The HTTP face: a BentoML service that validates, caches, featurises and calls the two runners.

Routes live in api/app.py (a FastAPI app mounted on this service); the work lives in api/,
features/, runners/, caching/ and monitoring/. BentoML's /livez, /readyz, /metrics and the
Swagger UI at / stay as BentoML serves them.

    bentoml serve service:ArmorService --port 3000
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import asyncio  # noqa: E402
import gc  # noqa: E402

import bentoml  # noqa: E402
import numpy as np  # noqa: E402

from api.app import SERVICE_VERSION, create_app  # noqa: E402
from api.feature_extractor import AsyncFeatureExtractor  # noqa: E402
from api.flow import PredictionFlow  # noqa: E402
from api.predictor import AsyncPredictor  # noqa: E402
from caching import ExpirySweeper, LayeredCache, RedisCache, TTLLRUCache  # noqa: E402
from features.featurizer import FAMILIES  # noqa: E402
from monitoring import report  # noqa: E402
from monitoring.instrumented import InstrumentedLayeredCache, InstrumentedLocalCache  # noqa: E402
from monitoring.metrics import Metrics  # noqa: E402
from monitoring.window import Ring  # noqa: E402
from runners.services import BallisticRunner, MechanicalRunner  # noqa: E402
from settings import Settings  # noqa: E402

SETTINGS = Settings()
# Fewer, larger collections: the default thresholds made the p99 tail 3-4x the median.
gc.set_threshold(50_000, 50, 100)


class DependencyClient:
    """Adapts a BentoML dependency (runner service) to api.predictor.RunnerClient."""

    def __init__(self, dependency):
        self._dep = dependency.to_async

    async def predict(self, features: np.ndarray) -> np.ndarray:
        return await self._dep.predict(features)

    async def explain(self, features: np.ndarray) -> np.ndarray:
        return await self._dep.explain(features)

    async def predict_version(self, features: np.ndarray, version: str, explain: bool) -> np.ndarray:
        return await self._dep.predict_version(features, version=version, explain=explain)

    async def describe(self) -> dict:
        return await self._dep.describe()


def response_cache(settings: Settings, metrics: Metrics) -> InstrumentedLayeredCache | None:
    if not settings.enable_response_caching:
        return None
    local = TTLLRUCache(max_entries=settings.response_cache_size, ttl_seconds=settings.response_cache_ttl,
                        max_memory_bytes=int(settings.response_cache_max_mb * 1e6))
    shared = None
    if settings.cache_backend == "redis":
        shared = RedisCache(settings.redis_url, timeout_s=settings.redis_timeout_ms / 1e3,
                            ttl_seconds=settings.response_cache_ttl)
    return InstrumentedLayeredCache(LayeredCache(local, shared), "response", metrics)


def feature_cache(settings: Settings, metrics: Metrics) -> InstrumentedLocalCache | None:
    if not settings.enable_feature_caching:
        return None
    local = TTLLRUCache(max_entries=settings.feature_cache_size, ttl_seconds=settings.feature_cache_ttl,
                        max_memory_bytes=int(settings.feature_cache_max_mb * 1e6))
    return InstrumentedLocalCache(local, "feature", metrics)


class ServiceCore:
    """Everything the routes need, built from one Settings object and the two runner clients, so
    tests build it in-process with the runner cores instead of BentoML dependencies."""

    def __init__(self, settings: Settings, runners: dict, root_pid: int | None = None):
        self.settings, self.metrics = settings, Metrics()
        shared = settings.prometheus_multiproc_dir
        self.rings = {f: Ring(shared, f) for f in FAMILIES}
        self.batch_rings: dict[str, Ring] = {}
        self.response_cache = response_cache(settings, self.metrics)
        self.feature_cache = feature_cache(settings, self.metrics)
        self.predictor = AsyncPredictor(runners)
        self.extractor = AsyncFeatureExtractor(self.metrics, self.feature_cache, settings.feature_extraction_workers)
        self.flow = PredictionFlow(self.predictor, self.extractor, self.metrics, self.response_cache, self.rings)
        self.sweeper = ExpirySweeper([c for c in (self.response_cache, self.feature_cache) if c],
                                     settings.sweep_interval_s)
        self.processes = report.ProcessMonitor(root_pid)

    def health(self) -> dict:
        return {"status": "ok", "version": SERVICE_VERSION, "uptime_s": round(report.uptime_s(self.processes), 3)}

    def _backend(self) -> dict:
        if self.response_cache is None:
            return {"backend": "disabled"}
        stats = self.response_cache.stats()
        return {"backend": stats["backend"], **({"shared": stats["shared"]} if "shared" in stats else {})}

    def performance(self) -> dict:
        return report.performance(self.metrics, self.settings.prometheus_multiproc_dir,
                                  self.settings.performance_window_s, self.rings, self.batch_rings, self._backend())

    async def _cache_reachable(self) -> dict:
        shared = self.response_cache.cache.shared if self.response_cache else None
        if shared is None:
            return {"backend": "memory" if self.response_cache else "disabled", "reachable": True}
        return {"backend": "redis", "reachable": await shared.ping(), **shared.stats()}

    async def status(self) -> dict:
        snapshot = await asyncio.to_thread(self.processes.snapshot)
        samples = report.read_samples(self.metrics, self.settings.prometheus_multiproc_dir)
        return {"status": "ok", "uptime_s": report.uptime_s(self.processes), "resources": snapshot,
                "versions": report.versions(SERVICE_VERSION), "models_loaded": report.model_cache(samples),
                "cache": await self._cache_reachable()}

    async def models(self) -> dict:
        serving = {f: await self.predictor.default_tag(f) for f in FAMILIES}
        return await asyncio.to_thread(report.models, serving)


def _current():
    return bentoml.get_current_service().core


@bentoml.service(name="ceramic_armor", workers=SETTINGS.api_workers, traffic={"timeout": 30},
                 logging={"access": {"enabled": SETTINGS.access_log}}, tracing={"excluded_urls": [".*"]})
@bentoml.asgi_app(create_app(_current, SETTINGS.max_request_bytes), path="")
class ArmorService:
    """Ceramic armor property prediction: mechanical and ballistic, with calibrated 95 % intervals."""

    mechanical = bentoml.depends(MechanicalRunner)
    ballistic = bentoml.depends(BallisticRunner)

    def __init__(self) -> None:
        self.core = ServiceCore(SETTINGS, {"mechanical": DependencyClient(self.mechanical),
                                           "ballistic": DependencyClient(self.ballistic)})

    @bentoml.on_startup
    async def _start_background(self) -> None:
        self.core.sweeper.start()
