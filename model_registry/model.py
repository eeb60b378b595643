"""A loaded model of one family: physics baseline + compiled correction trees + calibration.

Per target o, in the target's link space (log, or logit for a probability):

    z = baseline(x) + residual_mean + residual_scale * trees(x)
    half-width = q * (residual_scale * spread(x) + floor + extrapolation(x))
    extrapolation(x) = sum_j sensitivity_j * excess_j(x)

``excess_j`` is how far feature j lies outside its training range, in units of that range, and
``sensitivity_j`` how much the correction trees moved along feature j across the training data
(the 2.5-97.5 % range of its path contributions): beyond the data the trees are constant, so the
correction may be wrong by as much again per range travelled. Inside the training range the
extrapolation term is 0 and the interval is the split-conformal one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model_registry.baseline import LinearBaseline, inverse_link
from model_registry.forest import CompiledForest

# Physical bounds an interval is clipped to (a 95 % interval never needs to leave them).
TARGET_BOUNDS = {"poisson_ratio": (0.0, 0.5), "multi_hit_capability": (0.0, 1.0)}


@dataclass
class Prediction:
    """Arrays of shape (n, O); contributions (n, F, O) and base (O,) in target units;
    ``extrapolation`` (n, O): the share of the link-space half-width due to leaving the data."""

    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    contributions: np.ndarray | None
    base: np.ndarray
    extrapolation: np.ndarray | None = None


@dataclass
class ArmorModel:
    tag: str
    family: str
    targets: tuple[str, ...]
    forest: CompiledForest
    baseline: LinearBaseline
    residual_mean: np.ndarray
    residual_scale: np.ndarray
    interval_quantile: np.ndarray  # conformal half-width per unit of normalised spread, per target
    spread_floor: np.ndarray  # added to the tree spread so no interval collapses to zero width
    range_low: np.ndarray  # (F,) training minimum of each feature
    range_high: np.ndarray  # (F,) training maximum
    sensitivity: np.ndarray  # (F, O) link-space change of the correction across each feature's range
    metadata: dict = field(default_factory=dict)

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the model's arrays (what the model cache budgets)."""
        return self.forest.nbytes + self.sensitivity.nbytes + self.range_low.nbytes * 2

    def excess(self, X: np.ndarray) -> np.ndarray:
        """(n, F) distance outside the training range, in units of the range (0 inside)."""
        span = np.maximum(self.range_high - self.range_low, 1e-12)
        return np.maximum(np.maximum(self.range_low - X, X - self.range_high), 0.0) / span

    def link_prediction(self, X: np.ndarray, contributions: bool = False):
        """Link-space mean, tree spread (link units) and the raw tree output."""
        raw = self.forest.predict(X, contributions=contributions)
        z = self.baseline.predict(X) + self.residual_mean + self.residual_scale * raw.mean
        return z, self.residual_scale * raw.spread, raw

    def predict(self, X: np.ndarray, contributions: bool = False) -> Prediction:
        """One forest walk for every target, its 95 % interval and (optionally) contributions."""
        z, spread, raw = self.link_prediction(X, contributions)
        extrapolation = self.excess(X) @ self.sensitivity
        half = self.interval_quantile * (spread + self.spread_floor + extrapolation)
        values, lower, upper = self._to_units(z), self._to_units(z - half), self._to_units(z + half)
        low, high = self._bounds()
        contrib, base = None, self._base_units(raw.base)
        if raw.contributions is not None:
            contrib = self._contributions_units(X, z, values, raw, base)
        return Prediction(values=values, lower=np.maximum(lower, low), upper=np.minimum(upper, high),
                          contributions=contrib, base=base, extrapolation=self.interval_quantile * extrapolation)

    def _to_units(self, z: np.ndarray) -> np.ndarray:
        return np.column_stack([inverse_link(name, z[:, o]) for o, name in enumerate(self.baseline.links)])

    def _link_base(self, tree_base: np.ndarray) -> np.ndarray:
        _, linear_base = self.baseline.contributions(np.zeros((1, len(self.range_low))))
        return linear_base + self.residual_mean + self.residual_scale * tree_base

    def _base_units(self, tree_base: np.ndarray) -> np.ndarray:
        return self._to_units(self._link_base(tree_base)[None, :])[0]

    def _contributions_units(self, X, z, values, raw, base) -> np.ndarray:
        """Link-space contributions (baseline terms + Saabas paths of the trees), rescaled so that
        per row and target they sum, with ``base``, exactly to the prediction in target units."""
        linear, _ = self.baseline.contributions(X)
        link_contrib = linear + raw.contributions * self.residual_scale
        total = link_contrib.sum(axis=1)  # (n, O) = z - link base
        delta_units = values - base
        ratio = np.divide(delta_units, total, out=np.zeros_like(total), where=np.abs(total) > 1e-12)
        return link_contrib * ratio[:, None, :]

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low = np.array([TARGET_BOUNDS.get(t, (0.0, np.inf))[0] for t in self.targets])
        high = np.array([TARGET_BOUNDS.get(t, (0.0, np.inf))[1] for t in self.targets])
        return low, high
