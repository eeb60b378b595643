"""Feature extraction with a cache keyed by the normalised material.

Inline, on the event loop: one material costs ~0.15 ms (python -m features.bench: 137-173 us
for 1 material), less than handing it to a thread and back.

Almost all of that is fixed cost: one call featurised 1 / 3 / 8 / 16 materials in 178 / 197 / 242
/ 277 us (timeit, 2026-11-27). So a single request's materials on the default model are not
featurised here at all: they go out as ``PendingRows``, which the coalescer (api/prediction/coalescer.py)
encodes as material rows together with every other pending row of the runner call they go out in
(``material_rows``), and the runner featurises the rows of all API workers in one call
(runners/core.py). ``rows`` (with the feature cache) serves pinned versions and the batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from features.batch import MaterialBatch
from features.featurizer import FAMILIES, Featurizer
from features.schema import Material
from monitoring.instrumented import InstrumentedLocalCache
from monitoring.metrics import Metrics


@dataclass(frozen=True)
class PendingRows:
    """The runner's rows of ``materials``, not encoded yet (see the module doc)."""

    materials: list[Material]

    @property
    def size(self) -> int:
        return len(self.materials)


class AsyncFeatureExtractor:
    def __init__(self, metrics: Metrics, cache: InstrumentedLocalCache | None = None):
        self.featurizers = {f: Featurizer(f) for f in FAMILIES}
        self.widths = {f: len(featurizer.schema.names) for f, featurizer in self.featurizers.items()}
        self.cache, self.metrics = cache, metrics

    def featurize(self, family: str, materials: list[Material]) -> np.ndarray:
        return self._transform(family, MaterialBatch.from_materials(materials))

    def _transform(self, family: str, batch: MaterialBatch) -> np.ndarray:
        started = time.perf_counter()
        features = self.featurizers[family].transform(batch)
        self.metrics.tally.observe(self.metrics.feature_seconds, time.perf_counter() - started)
        return features

    def rows(self, family: str, materials: list[Material], keys: list[str] | None = None) -> np.ndarray:
        """(N, F) features; rows found in the cache (by ``keys``) are not recomputed. Inline: see
        the module doc."""
        if self.cache is None or keys is None:
            return self.featurize(family, materials)
        return self.through_cache(family, lambda at: MaterialBatch.from_materials([materials[i] for i in at]), keys)

    def through_cache(self, family: str, batch_of: Callable[[list[int]], MaterialBatch], keys: list[str]) -> np.ndarray:
        """(N, F) features of the N materials keyed by ``keys``: the cached rows from the cache,
        the others featurised together (``batch_of(positions)`` gives them as one batch) and stored."""
        out = np.empty((len(keys), self.widths[family]))
        cached = [self.cache.get(k) for k in keys] if self.cache is not None else [None] * len(keys)
        missing = [i for i, row in enumerate(cached) if row is None]
        for i, row in enumerate(cached):
            if row is not None:
                out[i] = np.frombuffer(row, dtype=np.float64)
        if missing:
            computed = self._transform(family, batch_of(missing))
            out[missing] = computed
            if self.cache is not None:
                for i, row in zip(missing, computed, strict=True):
                    self.cache.set(keys[i], row.tobytes())
        return out

    def material_rows(self, family: str, pending: Sequence[PendingRows]) -> list[np.ndarray]:
        """The material rows of each of ``pending`` (features.batch.MaterialBatch.to_rows), encoded
        in one call; the runner featurises them."""
        rows = MaterialBatch.from_materials([m for p in pending for m in p.materials]).to_rows()
        bounds = np.cumsum([0] + [p.size for p in pending])
        return [rows[start:stop] for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
