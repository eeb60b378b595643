"""What a runner worker does, free of BentoML so it can be tested in-process: hold the models
(``ModelCache``), warm up, and turn feature rows into one packed float array per row.

Packed row layout (``pack``/``unpack``), O targets and F features:
  values (O) | lower (O) | upper (O) | base (O) | contributions (F*O, only when explained)
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from features.featurizer import Featurizer
from model_registry.model import ArmorModel, Prediction
from monitoring.instrumented import InstrumentedLocalCache
from monitoring.metrics import Metrics
from monitoring.window import Ring
from runners.model_cache import ModelCache


@dataclass
class Unpacked:
    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    base: np.ndarray
    contributions: np.ndarray | None  # (n, F, O)


def pack(prediction: Prediction) -> np.ndarray:
    n = prediction.values.shape[0]
    base = np.broadcast_to(prediction.base, prediction.values.shape)
    parts = [prediction.values, prediction.lower, prediction.upper, base]
    if prediction.contributions is not None:
        parts.append(prediction.contributions.reshape(n, -1))
    return np.hstack(parts)


def unpack(packed: np.ndarray, n_targets: int, n_features: int) -> Unpacked:
    o = n_targets
    contributions = packed[:, 4 * o:].reshape(-1, n_features, o) if packed.shape[1] > 4 * o else None
    return Unpacked(packed[:, :o], packed[:, o:2 * o], packed[:, 2 * o:3 * o], packed[:, 3 * o:4 * o], contributions)


class RunnerCore:
    """One family's models inside one worker process, with the prediction cache (keyed by model
    tag, explain flag and the feature row's bytes) in front of the model."""

    def __init__(self, family: str, default_tag: str | None, model_cache_max_mb: float, metrics: Metrics,
                 prediction_cache: InstrumentedLocalCache | None = None, batch_ring: Ring | None = None):
        self.family, self.metrics, self.cache = family, metrics, prediction_cache
        self.models = ModelCache(family, default_tag, model_cache_max_mb * 1e6)
        self.n_features = len(Featurizer(family).schema.names)
        self.batch_ring = batch_ring or Ring(None, f"batch_{family}")
        self.model_calls = 0
        self._published: set[str] = set()
        self.ready = False

    def warm_up(self) -> None:
        """One prediction through every code path before /readyz says ready (not cached, not counted)."""
        rows = np.zeros((2, self.n_features))
        self.models.default.predict(rows)
        self.models.default.predict(rows, contributions=True)
        self._publish_models()
        self.ready = True

    def _publish_models(self) -> None:
        """Memory gauge per loaded model; evicted models' series are removed, not left stale."""
        loaded = {m.tag: m.memory_bytes for m in self.models.loaded()}
        for tag in self._published - loaded.keys():
            self.metrics.model_bytes.remove(self.family, tag)
        for tag, size in loaded.items():
            self.metrics.model_bytes.labels(self.family, tag).set(size)
        self._published = set(loaded)

    def predict(self, features: np.ndarray, explain: bool = False, version: str | None = None) -> np.ndarray:
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {features.shape}")
        self.batch_ring.append(features.shape[0])
        self.metrics.batch_size.labels(self.family).observe(features.shape[0])
        loads = self.models.loads
        model = self.models.get(version)
        if self.models.loads != loads:  # a version was loaded (and perhaps one evicted)
            self._publish_models()
        if self.cache is None:
            return self._run(model, features, explain)
        return self._through_cache(model, features, explain)

    def _run(self, model: ArmorModel, features: np.ndarray, explain: bool) -> np.ndarray:
        started = time.perf_counter()
        self.model_calls += 1
        packed = pack(model.predict(features, contributions=explain))
        self.metrics.prediction_seconds.labels(self.family).observe(time.perf_counter() - started)
        return packed

    def _through_cache(self, model: ArmorModel, features: np.ndarray, explain: bool) -> np.ndarray:
        cache = self.cache
        assert cache is not None  # only called with a cache
        prefix = f"{model.tag}|{int(explain)}|".encode()
        keys = [hashlib.blake2b(prefix + row.tobytes(), digest_size=20).hexdigest() for row in features]
        found: list[bytes | None] = [cache.get(k) for k in keys]
        missing = [i for i, row in enumerate(found) if row is None]
        if missing:
            computed = self._run(model, features[missing], explain)
            for j, i in enumerate(missing):
                row_bytes = computed[j].tobytes()
                found[i] = row_bytes
                cache.set(keys[i], row_bytes)
        return np.vstack([np.frombuffer(row, dtype=np.float64) for row in found if row is not None])
