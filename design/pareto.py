"""The non-dominated front of feasible candidates and its hypervolume, objectives as losses
(every objective minimised: a maximised one is negated, design.spec.Objective.loss).

Hypervolume: the volume the front dominates up to a reference point, by slicing along the last
objective down to an exact two-objective sweep (While et al. 2006's HSO; fine for the fronts of
a few hundred points a search keeps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")
# With no reference given, the worst feasible loss plus this share of the losses' span (a point on
# the worst edge would otherwise add no volume).
REFERENCE_MARGIN = 0.1


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def _two(points: np.ndarray, reference: np.ndarray) -> float:
    """Two objectives: sorted by the first, each point adds the strip between its second
    objective and the lowest second objective before it (as arrays: one sort, one running min)."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    x, y = points[order, 0], points[order, 1]
    ceiling = np.minimum.accumulate(np.concatenate([[reference[1]], y]))[:-1]
    return float(np.sum((reference[0] - x) * np.clip(ceiling - y, 0.0, None)))


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The volume dominated by ``points`` (n, m losses) and bounded by ``reference`` (m,)."""
    points = points[np.all(points < reference, axis=1)]
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(reference[0] - points[:, 0].min())
    if points.shape[1] == 2:
        return _two(points, reference)
    order = np.argsort(points[:, -1], kind="stable")
    points = points[order]
    volume = 0.0
    for i in range(len(points)):
        top = points[i + 1, -1] if i + 1 < len(points) else reference[-1]
        if top > points[i, -1]:
            volume += (top - points[i, -1]) * hypervolume(points[: i + 1, :-1], reference[:-1])
    return volume


def non_dominated(points: np.ndarray) -> np.ndarray:
    """The rows of ``points`` no other row weakly dominates (one of each set of equal rows)."""
    points = np.unique(points, axis=0)
    weakly = np.all(points[:, None, :] <= points[None, :, :], axis=2)  # [i, j]: i weakly dominates j
    np.fill_diagonal(weakly, False)
    return points[~weakly.any(axis=0)]


def improvement(point: np.ndarray, front: np.ndarray, reference: np.ndarray) -> float:
    """The hypervolume ``point`` adds to ``front``: its box up to the reference less the part the
    front already covers (the front clipped to the box, whose points mostly collapse onto each
    other: far cheaper than the front's whole hypervolume twice)."""
    if np.any(point >= reference):
        return 0.0
    box = float(np.prod(reference - point))
    clipped = np.maximum(front, point)
    clipped = clipped[np.all(clipped < reference, axis=1)]
    return box - (hypervolume(non_dominated(clipped), reference) if len(clipped) else 0.0)


@dataclass
class Front(Generic[T]):
    """The feasible candidates no other dominates, with the span of every feasible loss seen."""

    objectives: int
    items: list[T] = field(default_factory=list)
    losses: np.ndarray = field(init=False)
    worst: np.ndarray = field(init=False)
    best: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.losses = np.zeros((0, self.objectives))
        self.worst = np.full(self.objectives, -np.inf)
        self.best = np.full(self.objectives, np.inf)

    def offer(self, loss: np.ndarray, item: T) -> bool:
        """Keep ``item`` when nothing kept dominates or equals it (dropping what it dominates)."""
        self.worst, self.best = np.maximum(self.worst, loss), np.minimum(self.best, loss)
        if len(self.losses) and (np.all(self.losses <= loss, axis=1)).any():
            return False
        beaten = np.all(loss <= self.losses, axis=1) & np.any(loss < self.losses, axis=1)
        self.items = [item for item, gone in zip(self.items, beaten, strict=True) if not gone] + [item]
        self.losses = np.vstack([self.losses[~beaten], loss])
        return True

    def reference(self, given: list[float | None]) -> np.ndarray:
        """Each objective's reference: the given one (as a loss), else the worst feasible loss plus
        REFERENCE_MARGIN of the span."""
        span = np.where(self.worst > self.best, self.worst - self.best, np.abs(self.worst) * 1e-3 + 1e-9)
        default = self.worst + REFERENCE_MARGIN * span
        return np.array([default[i] if g is None else g for i, g in enumerate(given)], dtype=np.float64)

    def hypervolume(self, reference: np.ndarray) -> float:
        return hypervolume(self.losses, reference) if len(self.losses) else 0.0
