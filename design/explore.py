"""What to test next (``strategy: "explore"``): the feasible candidates ranked by an acquisition
that uses the 95 % intervals, and K of them that are not near-copies of each other.

Acquisition: the hypervolume improvement of the candidate's optimistic point (an upper confidence
bound: each objective at the favourable end of its target's interval, the high end when maximised,
the low end when minimised) over the front of predicted values found so far. A candidate the model
is unsure about, whose interval reaches past the current front, scores high even when its predicted
value is on or behind the front; a candidate whose whole interval is dominated scores 0.

Diversity: greedy in acquisition order, a candidate is taken only when it lies at least
``MIN_DISTANCE`` (Euclidean distance in the unit cube of the free inputs, divided by the square
root of its dimensions) from every one taken; when too few qualify, the rest are the farthest from
those taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from design.pareto import improvement

if TYPE_CHECKING:
    from design.evaluate import Candidate
    from design.spec import Objective, Problem

MIN_DISTANCE = 0.1
# Candidates whose acquisition is computed exactly (one hypervolume each): the best by a cheap
# pre-score (the optimistic point's total normalised distance beyond the reference).
SHORTLIST = 256
ACQUISITION = "optimistic_hypervolume_improvement"


def optimistic_loss(objective: Objective, predictions: dict[str, Any]) -> float:
    low, high = predictions[objective.quantity.target]["confidence_interval"]
    return -float(high) if objective.maximize else float(low)


def _shortlist(optimistic: np.ndarray, reference: np.ndarray) -> np.ndarray:
    scale = np.maximum(np.abs(reference), 1e-9)
    score = np.clip((reference - optimistic) / scale, 0.0, None).sum(axis=1)
    return np.argsort(-score, kind="stable")[:SHORTLIST]


def _gains(optimistic: np.ndarray, front: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.array([improvement(point, front, reference) for point in optimistic])


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.sqrt(max(len(a), 1)))


def diverse(positions: np.ndarray, k: int, min_distance: float = MIN_DISTANCE) -> list[int]:
    """Indices of ``k`` rows of ``positions`` (already in preference order): greedily those at least
    ``min_distance`` from every one taken, then the farthest from those taken."""
    taken: list[int] = []
    for i in range(len(positions)):
        if len(taken) == k:
            return taken
        if all(_distance(positions[i], positions[j]) >= min_distance for j in taken):
            taken.append(i)
    while len(taken) < min(k, len(positions)):
        rest = [i for i in range(len(positions)) if i not in taken]
        taken.append(max(rest, key=lambda i: min(_distance(positions[i], positions[j]) for j in taken)))
    return taken


def suggest(problem: Problem, pool: list[Candidate], front: np.ndarray, reference: np.ndarray) -> list[dict[str, Any]]:
    """K diverse feasible candidates, best acquisition first, each with its acquisition."""
    if not pool:
        return []
    objectives = problem.objectives
    optimistic = np.array([[optimistic_loss(o, c.predictions) for o in objectives] for c in pool])
    shortlist = _shortlist(optimistic, reference)
    gains = _gains(optimistic[shortlist], front, reference)
    ranked = shortlist[np.argsort(-gains, kind="stable")]
    gain_of = dict(zip(shortlist.tolist(), gains.tolist(), strict=True))
    positions = np.array([problem.space.unit(pool[i].request) for i in ranked])
    chosen = [int(ranked[i]) for i in diverse(positions, problem.suggestions)]
    return [
        pool[i].entry()
        | {
            "acquisition": {
                "kind": ACQUISITION,
                "value": gain_of[i],
                "optimistic": {
                    o.text: (-v if o.maximize else v) for o, v in zip(objectives, optimistic[i], strict=True)
                },
            }
        }
        for i in chosen
    ]
