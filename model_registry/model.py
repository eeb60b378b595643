"""A loaded model of one family: the compiled forest plus its calibration, in target units."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model_registry.forest import CompiledForest

# Physical bounds an interval is clipped to (a 95 % interval never needs to leave them).
TARGET_BOUNDS = {"poisson_ratio": (0.0, 0.5), "multi_hit_capability": (0.0, 1.0)}


@dataclass
class Prediction:
    """Arrays of shape (n, O); contributions (n, F, O) and base (O,) in target units."""

    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    contributions: np.ndarray | None
    base: np.ndarray


@dataclass
class ArmorModel:
    tag: str
    family: str
    targets: tuple[str, ...]
    forest: CompiledForest
    y_mean: np.ndarray
    y_scale: np.ndarray
    interval_quantile: np.ndarray  # conformal half-width per unit of normalised spread, per target
    spread_floor: np.ndarray  # added to the tree spread so no interval collapses to zero width
    metadata: dict = field(default_factory=dict)

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the model's arrays (what the model cache budgets)."""
        return self.forest.nbytes + self.y_mean.nbytes + self.y_scale.nbytes

    def predict(self, X: np.ndarray, contributions: bool = False) -> Prediction:
        """One forest walk for every target, its 95 % interval and (optionally) contributions."""
        raw = self.forest.predict(X, contributions=contributions)
        values = self.y_mean + self.y_scale * raw.mean
        half = self.interval_quantile * (self.y_scale * raw.spread + self.spread_floor)
        low, high = self._bounds()
        contrib = None if raw.contributions is None else raw.contributions * self.y_scale
        return Prediction(values=values, lower=np.maximum(values - half, low), upper=np.minimum(values + half, high),
                          contributions=contrib, base=self.y_mean + self.y_scale * raw.base)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low = np.array([TARGET_BOUNDS.get(t, (0.0, np.inf))[0] for t in self.targets])
        high = np.array([TARGET_BOUNDS.get(t, (0.0, np.inf))[1] for t in self.targets])
        return low, high
