"""One BentoML service per model family, each owning its model and batching concurrent calls.

Adaptive batching: ``max_batch_size`` and ``max_latency_ms`` come from the settings
(MAX_BATCH_SIZE, MAX_LATENCY_MS); the defaults were chosen by measurement, see
docs/performance.md. Workers: PREDICTION_WORKERS (default: the CPU cores). Each worker runs
single-threaded NumPy (OMP/BLAS threads = 1, settings.worker_settings) so workers do not
oversubscribe the cores.
"""

from __future__ import annotations

from settings import worker_settings

SETTINGS = worker_settings()  # before NumPy-backed imports: it sets the thread variables

import bentoml  # noqa: E402
import numpy as np  # noqa: E402

from caching import ExpirySweeper, TTLLRUCache  # noqa: E402
from monitoring.instrumented import InstrumentedLocalCache  # noqa: E402
from monitoring.metrics import Metrics  # noqa: E402
from monitoring.window import Ring  # noqa: E402
from runners.core import RunnerCore  # noqa: E402

_SERVICE_CONFIG = {
    "workers": SETTINGS.prediction_workers,
    "traffic": {"timeout": 30},
    "logging": {"access": {"enabled": False}},  # the API's JSON access line covers each request
    # The API's client for a dependency rebuilds its aiohttp session every `max_requests`
    # (default 100) requests and closes the old one while requests are still in flight on it:
    # that was the source of the 500 ServerDisconnectedError under concurrency
    # (_bentoml_impl/client/proxy2.py, SessionManager). Never recycle it.
    "runner_connection": {"max_requests": 10**9, "max_age": 1e9},
    # OpenTelemetry spans cost ~40 % of a trivial request; no exporter is configured anyway.
    "tracing": {"excluded_urls": [".*"]},
}


def _model_ref(family: str, pinned: str | None) -> bentoml.models.BentoModel:
    tag = pinned if pinned and ":" in pinned else f"armor_{family}:{pinned or 'latest'}"
    return bentoml.models.BentoModel(tag)


class _FamilyRunner:
    """Shared body of the two runner services (only the family and the model reference differ)."""

    family: str
    model_ref: bentoml.models.BentoModel

    def __init__(self) -> None:
        metrics = Metrics()
        shared_dir = SETTINGS.prometheus_multiproc_dir
        self.core = RunnerCore(
            self.family,
            str(self.model_ref.tag),
            SETTINGS.model_cache_max_mb,
            metrics,
            _prediction_cache(metrics),
            Ring(shared_dir, f"batch_{self.family}"),
        )
        self.core.warm_up()
        self.sweeper = ExpirySweeper([self.core.cache] if self.core.cache else [], SETTINGS.sweep_interval_s)

    @bentoml.on_startup
    async def _start_sweeper(self) -> None:
        self.sweeper.start()

    def __is_ready__(self) -> bool:
        return self.core.ready

    @bentoml.api(batchable=True, max_batch_size=SETTINGS.max_batch_size, max_latency_ms=SETTINGS.max_latency_ms)
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Values, 95 % intervals and base values for rows of features (default model)."""
        return self.core.predict(features)

    @bentoml.api(batchable=True, max_batch_size=SETTINGS.max_batch_size, max_latency_ms=SETTINGS.max_latency_ms)
    def explain(self, features: np.ndarray) -> np.ndarray:
        """As ``predict`` plus per-feature contributions (default model)."""
        return self.core.predict(features, explain=True)

    @bentoml.api
    def predict_version(self, features: np.ndarray, version: str, explain: bool = False) -> np.ndarray:
        """Rows through a named model version (loaded lazily into the model cache)."""
        return self.core.predict(features, explain=explain, version=version)

    @bentoml.api
    def card(self, version: str | None = None) -> dict:
        """The card of the default model or of a version (runners.contract.CardReply as a dict)."""
        return self.core.card(version).to_dict()


def _prediction_cache(metrics: Metrics) -> InstrumentedLocalCache | None:
    if not SETTINGS.enable_prediction_caching:
        return None
    local = TTLLRUCache(
        max_entries=SETTINGS.prediction_cache_size,
        ttl_seconds=SETTINGS.prediction_cache_ttl,
        max_memory_bytes=int(SETTINGS.prediction_cache_max_mb * 1e6),
    )
    return InstrumentedLocalCache(local, "prediction", metrics)


@bentoml.service(name="mechanical_runner", **_SERVICE_CONFIG)
class MechanicalRunner(_FamilyRunner):
    family = "mechanical"
    model_ref = _model_ref("mechanical", SETTINGS.mechanical_model_tag)


@bentoml.service(name="ballistic_runner", **_SERVICE_CONFIG)
class BallisticRunner(_FamilyRunner):
    family = "ballistic"
    model_ref = _model_ref("ballistic", SETTINGS.ballistic_model_tag)
