"""What a runner worker does, free of BentoML so it can be tested in-process: hold the models
(``ModelCache``), warm up, and turn feature rows into one packed float array per row.

Packed row layout (``pack``/``unpack``), O targets and F features:
  values (O) | lower (O) | upper (O) | base (O) | contributions (F*O, only when explained)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from features.featurizer import Featurizer
from model_registry.model import ArmorModel, Prediction
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
    """One family's models inside one worker process."""

    def __init__(self, family: str, default_tag: str | None, model_cache_max_mb: float):
        self.family = family
        self.models = ModelCache(family, default_tag, model_cache_max_mb * 1e6)
        self.n_features = len(Featurizer(family).schema.names)
        self.batch_sizes: deque[int] = deque(maxlen=2048)  # sizes of the batches formed, newest last
        self.ready = False

    def warm_up(self) -> None:
        """One prediction through every code path before /readyz says ready."""
        rows = np.zeros((2, self.n_features))
        self.predict(rows)
        self.predict(rows, explain=True)
        self.batch_sizes.clear()
        self.ready = True

    def _model(self, version: str | None) -> ArmorModel:
        return self.models.get(version)

    def predict(self, features: np.ndarray, explain: bool = False, version: str | None = None) -> np.ndarray:
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {features.shape}")
        self.batch_sizes.append(features.shape[0])
        return pack(self._model(version).predict(features, contributions=explain))
