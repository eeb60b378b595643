"""One BentoML service per model family, each owning its model and batching concurrent calls.

Adaptive batching: ``max_batch_size`` and ``max_latency_ms`` come from the settings
(MAX_BATCH_SIZE, MAX_LATENCY_MS); the defaults were chosen by measurement, see
docs/performance.md. Workers: PREDICTION_WORKERS (default: the CPU cores). Each worker runs
single-threaded NumPy (OMP/BLAS threads = 1, settings.worker_settings) so workers do not
oversubscribe the cores.
"""

from __future__ import annotations

from typing import Any

import bentoml
import numpy as np

from caching import ExpirySweeper
from model_registry import store
from monitoring.instrumented import instrumented_local
from monitoring.metrics import Metrics
from monitoring.window import Ring
from runners.core import RunnerCore
from settings import bentoml_service_options, worker_settings

SETTINGS = worker_settings()

_SERVICE_CONFIG = {
    **bentoml_service_options(SETTINGS.serving, SETTINGS.serving.prediction_workers),
    # The API's client for a dependency rebuilds its aiohttp session every `max_requests`
    # (default 100) requests and closes the old one while requests are still in flight on it:
    # that was the source of the 500 ServerDisconnectedError under concurrency
    # (_bentoml_impl/client/proxy2.py, SessionManager). Never recycle it.
    "runner_connection": {"max_requests": 10**9, "max_age": 1e9},
}
_BATCHING = {"max_batch_size": SETTINGS.batching.max_batch_size, "max_latency_ms": SETTINGS.batching.max_latency_ms}


def _model_ref(family: str, pinned: str | None) -> bentoml.models.BentoModel:
    """The model this runner serves by default, resolved by the registry (the one place that
    turns a pin, a bare version or nothing into a tag); declared so `bentoml build` packs it."""
    return bentoml.models.BentoModel(str(store.resolve(family, pinned).tag))


class _FamilyRunner:
    """Shared body of the two runner services (only the family and the model reference differ)."""

    family: str
    model_ref: bentoml.models.BentoModel

    def __init__(self) -> None:
        metrics = Metrics()
        self.core = RunnerCore(
            self.family,
            str(self.model_ref.tag),
            SETTINGS.models.cache_max_mb,
            metrics,
            instrumented_local("prediction", SETTINGS.prediction_cache, metrics),
            Ring(SETTINGS.monitoring.shared_dir, f"batch_{self.family}"),
        )
        self.core.warm_up()
        self.sweeper = ExpirySweeper([self.core.cache] if self.core.cache else [], SETTINGS.monitoring.sweep_interval_s)

    @bentoml.on_startup
    async def _start_sweeper(self) -> None:
        self.sweeper.start()

    @bentoml.on_shutdown
    async def _stop_sweeper(self) -> None:
        await self.sweeper.stop()

    def __is_ready__(self) -> bool:
        return self.core.ready

    @bentoml.api(batchable=True, **_BATCHING)
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Values, 95 % intervals and base values for rows of features (default model)."""
        return self.core.predict(features)

    @bentoml.api(batchable=True, **_BATCHING)
    def explain(self, features: np.ndarray) -> np.ndarray:
        """As ``predict`` plus per-feature contributions (default model)."""
        return self.core.predict(features, explain=True)

    @bentoml.api
    def predict_version(self, features: np.ndarray, version: str, explain: bool = False) -> np.ndarray:
        """Rows through a named model version (loaded lazily into the model cache)."""
        return self.core.predict(features, explain=explain, version=version)

    @bentoml.api
    def card(self, version: str | None = None) -> dict[str, Any]:
        """The card of the default model or of a version (runners.contract.CardReply as a dict)."""
        return self.core.card(version).to_dict()


@bentoml.service(name="mechanical_runner", **_SERVICE_CONFIG)
class MechanicalRunner(_FamilyRunner):
    family = "mechanical"
    model_ref = _model_ref("mechanical", SETTINGS.models.pins["mechanical"])


@bentoml.service(name="ballistic_runner", **_SERVICE_CONFIG)
class BallisticRunner(_FamilyRunner):
    family = "ballistic"
    model_ref = _model_ref("ballistic", SETTINGS.models.pins["ballistic"])
