"""A loaded model of one family: physics baseline + compiled correction trees + calibration.

Per target o, in the target's link space (log, or logit for a probability):

    z = baseline(x) + residual_mean + residual_scale * trees(x)
    half-width = q * (residual_scale * spread(x) + floor + extrapolation(x) + load(x))
    extrapolation(x) = sum_j sensitivity_j * excess_j(x)
    load(x) = the hardness family's load-law uncertainty (``LinearBaseline.half_width``), else 0

``excess_j`` is how far feature j lies outside its training range, in units of that range, and
``sensitivity_j`` how much the correction trees moved along feature j across the training data
(the 2.5-97.5 % range of its path contributions): beyond the data the trees are constant, so the
correction may be wrong by as much again per range travelled. Inside the training range the
extrapolation term is 0 and the interval is the split-conformal one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model_registry.baseline import LOGIT_EDGE, LinearBaseline
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
    baseline: LinearBaseline
    residual_mean: np.ndarray
    residual_scale: np.ndarray
    interval_quantile: np.ndarray  # conformal half-width per unit of normalised spread, per target
    spread_floor: np.ndarray  # added to the tree spread so no interval collapses to zero width
    range_low: np.ndarray  # (F,) training minimum of each feature
    range_high: np.ndarray  # (F,) training maximum
    sensitivity: np.ndarray  # (F, O) link-space change of the correction across each feature's range
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        bounds = [TARGET_BOUNDS.get(t, (0.0, np.inf)) for t in self.targets]
        self._low, self._high = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
        self._logit = np.flatnonzero([name == "logit" for name in self.baseline.links])
        self._span = np.maximum(self.range_high - self.range_low, 1e-12)

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the model's arrays (what the model cache budgets)."""
        return self.forest.nbytes + self.sensitivity.nbytes + self.range_low.nbytes * 2

    def excess(self, X: np.ndarray) -> np.ndarray:
        """(n, F) distance outside the training range, in units of the range (0 inside)."""
        return np.maximum(np.maximum(self.range_low - X, X - self.range_high), 0.0) / self._span

    def link_prediction(self, X: np.ndarray, contributions: bool = False):
        """Link-space mean, tree spread (link units) and the raw tree output."""
        raw = self.forest.predict(X, contributions=contributions)
        z = self.baseline.predict(X) + self.residual_mean + self.residual_scale * raw.mean
        return z, self.residual_scale * raw.spread, raw

    def predict(self, X: np.ndarray, contributions: bool = False) -> Prediction:
        """One forest walk for every target, its 95 % interval and (optionally) contributions."""
        z, spread, raw = self.link_prediction(X, contributions)
        extrapolation = self.excess(X) @ self.sensitivity
        half = self.interval_quantile * (spread + self.spread_floor + extrapolation + self.baseline.half_width(X))
        n, low_centre, high_centre = len(z), z, z
        if self._logit.size:  # trained on p clipped to [eps, 1 - eps]: beyond the clip the interval starts at it
            low_centre, high_centre = z.copy(), z.copy()
            low_centre[:, self._logit] = np.minimum(z[:, self._logit], LOGIT_EDGE)
            high_centre[:, self._logit] = np.maximum(z[:, self._logit], -LOGIT_EDGE)
        units = self._to_units(
            np.vstack([z, low_centre - half, high_centre + half, self._link_base(raw.base)[None, :]])
        )
        values, lower, upper, base = units[:n], units[n : 2 * n], units[2 * n : 3 * n], units[3 * n]
        contrib = None
        if raw.contributions is not None:
            contrib = self._contributions_units(X, values, raw, base)
        return Prediction(
            values=values,
            lower=np.maximum(lower, self._low),
            upper=np.minimum(upper, self._high),
            contributions=contrib,
            base=base,
        )

    def _to_units(self, z: np.ndarray) -> np.ndarray:
        """Inverse link of every column (exp; the logistic function for logit targets)."""
        out = np.exp(z)
        if self._logit.size:
            out[:, self._logit] = 1.0 / (1.0 + np.exp(-z[:, self._logit]))
        return out

    def _link_base(self, tree_base: np.ndarray) -> np.ndarray:
        return self.baseline.base + self.residual_mean + self.residual_scale * tree_base

    def _contributions_units(self, X, values, raw, base) -> np.ndarray:
        """Link-space contributions (baseline terms + Saabas paths of the trees), rescaled so that
        per row and target they sum, with ``base``, exactly to the prediction in target units."""
        link_contrib = self.baseline.contributions(X) + raw.contributions * self.residual_scale
        total = link_contrib.sum(axis=1)  # (n, O) = z - link base
        delta_units = values - base
        ratio = np.divide(delta_units, total, out=np.zeros_like(total), where=np.abs(total) > 1e-12)
        return link_contrib * ratio[:, None, :]
