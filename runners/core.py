"""What a runner worker does, free of BentoML so it can be tested in-process: hold the models
(``ModelCache``), warm up, turn feature rows, or material rows of the material families
(features.batch.MaterialBatch.to_rows), into one packed float array per row and answer which
model a version is (its card). What crosses to the API: ``runners.contract``.

Why material rows: featurising costs nearly as much for 8 materials as for 1 (a fixed ~0.17 ms,
api/prediction/feature_extractor.py), and here the rows of every API worker arrive in one call, so the
runner featurises bigger batches than each API worker could, and the API workers, which do most
of a request's work, do less (issue 12).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import fields

import numpy as np

from features.batch import MATERIAL_ROW_WIDTH, MaterialBatch
from features.catalogue import FAMILIES as MATERIAL_FAMILIES
from features.families import feature_schema
from features.featurizer import Featurizer
from model_registry import store
from model_registry.model import ArmorModel
from monitoring.instrumented import InstrumentedLocalCache
from monitoring.metrics import Metrics
from monitoring.window import Ring
from runners.contract import CardReply, ModelCard, RowKind, pack
from runners.model_cache import ModelCache


def pack_prediction(model: ArmorModel, features: np.ndarray, explain: bool) -> np.ndarray:
    p = model.predict(features, contributions=explain)
    return pack(model.tag, p.values, p.lower, p.upper, p.base, p.contributions)


def model_card(family: str, tag: str) -> ModelCard:
    """The registry's card of one stored model (metadata written at training time, never typed here)."""
    raw = store.card(family, tag)
    known = {f.name for f in fields(ModelCard)}  # the rest of the registry's metadata goes to .metadata
    return ModelCard(
        tag=raw["tag"],
        name=raw["name"],
        version=raw["version"],
        family=family,
        targets=tuple(raw["targets"]),
        created_at=raw["created_at"],
        training_samples=int(raw["samples"]["training"]),
        metrics=raw["metrics"],
        feature_names=tuple(raw["feature_names"]),
        feature_categories=tuple(raw["feature_categories"]),
        feature_ranges=raw["feature_ranges"],
        feature_importance=raw["feature_importance"],
        metadata={k: v for k, v in raw.items() if k not in known},
    )


class RunnerCore:
    """One family's models inside one worker process, with the prediction cache (keyed by model
    tag, explain flag and the feature row's bytes) in front of the model."""

    def __init__(
        self,
        family: str,
        default_tag: str | None,
        model_cache_max_mb: float,
        metrics: Metrics,
        prediction_cache: InstrumentedLocalCache | None = None,
        batch_ring: Ring | None = None,
    ):
        self.family, self.metrics, self.cache = family, metrics, prediction_cache
        self.models = ModelCache(family, default_tag, model_cache_max_mb * 1e6)
        self.n_features = len(feature_schema(family).names)
        self.featurizer = Featurizer(family) if family in MATERIAL_FAMILIES else None
        self.batch_ring = batch_ring or Ring(None, f"batch_{family}")
        # label children looked up once, not on every call
        self._batch_rows = metrics.batch_size.labels(family)
        self._model_seconds = metrics.prediction_seconds.labels(family)
        self.model_calls = 0
        self._published: set[str] = set()
        self._cards: dict[str, ModelCard] = {}
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

    def predict(
        self, features: np.ndarray, explain: bool = False, version: str | None = None, cache: bool = True
    ) -> np.ndarray:
        """Packed rows; ``cache`` False: past the prediction cache (a batch screen's rows, which
        would only evict the interactive traffic's entries)."""
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {features.shape}")
        model = self._model(features, version)
        return self._answer(model, features, explain, cache, lambda rows: self._run(model, rows, explain), b"")

    def answer(self, rows: np.ndarray, kind: RowKind = RowKind(), version: str | None = None) -> np.ndarray:
        """``predict_materials`` for material rows, else ``predict``: what every client calls."""
        call = self.predict_materials if kind.materials else self.predict
        return call(rows, kind.explain, version, kind.cache)

    def predict_materials(
        self, materials: np.ndarray, explain: bool = False, version: str | None = None, cache: bool = True
    ) -> np.ndarray:
        """Packed rows of material rows (module doc), featurised here; as ``predict`` otherwise
        (the prediction cache keys the material row)."""
        if self.featurizer is None:
            raise ValueError(f"the {self.family} family takes feature rows, not material rows")
        if materials.ndim != 2 or materials.shape[1] != MATERIAL_ROW_WIDTH:
            raise ValueError(f"expected material rows of {MATERIAL_ROW_WIDTH} columns, got shape {materials.shape}")
        model = self._model(materials, version)
        featurizer = self.featurizer

        def compute(rows: np.ndarray) -> np.ndarray:
            started = time.perf_counter()
            features = featurizer.transform(MaterialBatch.from_rows(rows))
            self.metrics.tally.observe(self.metrics.feature_seconds, time.perf_counter() - started)
            return self._run(model, features, explain)

        return self._answer(model, materials, explain, cache, compute, b"material|")

    def _model(self, rows: np.ndarray, version: str | None) -> ArmorModel:
        """The model of a call (the batch counted)."""
        self.batch_ring.append(rows.shape[0])
        self.metrics.tally.observe(self._batch_rows, rows.shape[0])
        loads = self.models.loads
        model = self.models.get(version)
        if self.models.loads != loads:  # a version was loaded (and perhaps one evicted)
            self._publish_models()
        return model

    def _answer(
        self,
        model: ArmorModel,
        rows: np.ndarray,
        explain: bool,
        cache: bool,
        compute: Callable[[np.ndarray], np.ndarray],
        kind: bytes,
    ) -> np.ndarray:
        if self.cache is None or not cache:
            return compute(rows)
        return self._through_cache(model, rows, explain, compute, kind)

    def _run(self, model: ArmorModel, features: np.ndarray, explain: bool) -> np.ndarray:
        started = time.perf_counter()
        self.model_calls += 1
        packed = pack_prediction(model, features, explain)
        self.metrics.tally.observe(self._model_seconds, time.perf_counter() - started)
        return packed

    def _through_cache(
        self,
        model: ArmorModel,
        features: np.ndarray,
        explain: bool,
        compute: Callable[[np.ndarray], np.ndarray],
        kind: bytes,
    ) -> np.ndarray:
        """The packed rows, the cached ones from the cache (keyed by ``kind``, feature or material
        rows, and the row), the others by ``compute``. When every row misses (the cold path) the
        computed array is returned as it is, without copying rows in and out."""
        cache = self.cache
        assert cache is not None  # only called with a cache
        prefix = f"{model.tag}|{int(explain)}|".encode() + kind
        keys = [hashlib.blake2b(prefix + row.tobytes(), digest_size=20).hexdigest() for row in features]
        found: list[bytes | None] = [cache.get(k) for k in keys]
        missing = [i for i, row in enumerate(found) if row is None]
        if len(missing) == len(keys):
            packed = compute(features)
            for key, row in zip(keys, packed, strict=True):
                cache.set(key, row.tobytes())
            return packed
        if missing:
            computed = compute(features[missing])
            for i, row in zip(missing, computed, strict=True):
                found[i] = row_bytes = row.tobytes()
                cache.set(keys[i], row_bytes)
        joined = bytearray(b"".join(row for row in found if row is not None))  # writable, as the model's array
        return np.frombuffer(joined, dtype=np.float64).reshape(len(keys), -1)

    def card(self, version: str | None = None) -> CardReply:
        """The card of the default model or of a version, or why there is none (never raises for
        a bad version: the API maps the reply to 404 or 422)."""
        try:
            tag = self.models.default.tag if version is None else self.models.resolve(version)
        except store.InvalidModelVersion as exc:
            return CardReply(error="invalid", message=str(exc))
        except store.ModelNotFound as exc:
            return CardReply(error="not_found", message=str(exc), available=tuple(exc.available))
        if tag not in self._cards:
            self._cards[tag] = model_card(self.family, tag)
        return CardReply(card=self._cards[tag])
