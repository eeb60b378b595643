"""design/pareto.py: the hypervolume against hand-computed and sampled volumes, the front's upkeep."""

from __future__ import annotations

import numpy as np
import pytest

from design.pareto import Front, dominates, hypervolume, improvement, non_dominated


def test_two_objectives_by_hand():
    points = np.array([[1.0, 2.0], [2.0, 1.0], [2.5, 2.5]])  # the last is dominated
    assert hypervolume(points, np.array([3.0, 3.0])) == pytest.approx(2 + 1)


def test_three_objectives_by_hand():
    points = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    assert hypervolume(points, np.array([2.0, 2.0, 2.0])) == pytest.approx(2 + 2 - 1)


def test_points_beyond_the_reference_add_nothing():
    assert hypervolume(np.array([[4.0, 0.0]]), np.array([3.0, 3.0])) == 0.0


def test_three_objectives_against_sampling():
    rng = np.random.default_rng(3)
    points = rng.random((12, 3))
    reference = np.ones(3)
    samples = rng.random((400_000, 3))
    covered = np.zeros(len(samples), dtype=bool)
    for p in points:
        covered |= np.all(samples >= p, axis=1)
    assert hypervolume(points, reference) == pytest.approx(covered.mean(), abs=0.005)


def test_the_front_keeps_only_what_nothing_dominates():
    front: Front[str] = Front(2)
    assert front.offer(np.array([2.0, 2.0]), "a")
    assert front.offer(np.array([1.0, 3.0]), "b")
    assert not front.offer(np.array([2.0, 2.5]), "dominated")
    assert not front.offer(np.array([2.0, 2.0]), "equal")
    assert front.offer(np.array([1.0, 1.0]), "c")  # dominates a and b
    assert front.items == ["c"] and front.losses.tolist() == [[1.0, 1.0]]
    assert front.worst.tolist() == [2.0, 3.0] and front.best.tolist() == [1.0, 1.0]


def test_the_default_reference_lies_beyond_the_worst_feasible_loss():
    front: Front[int] = Front(2)
    front.offer(np.array([0.0, 10.0]), 0)
    front.offer(np.array([1.0, 5.0]), 1)
    assert front.reference([None, None]).tolist() == pytest.approx([1.1, 10.5])
    assert front.reference([None, 20.0]).tolist() == pytest.approx([1.1, 20.0])


def test_dominates():
    assert dominates(np.array([1.0, 1.0]), np.array([1.0, 2.0]))
    assert not dominates(np.array([1.0, 1.0]), np.array([1.0, 1.0]))


def test_a_point_s_improvement_is_the_hypervolume_it_adds():
    rng = np.random.default_rng(5)
    for objectives in (2, 3):
        front = rng.random((40, objectives))
        reference = np.full(objectives, 1.2)
        base = hypervolume(front, reference)
        for point in rng.random((20, objectives)):
            added = hypervolume(np.vstack([front, point]), reference) - base
            assert improvement(point, front, reference) == pytest.approx(added, abs=1e-12)
    assert improvement(np.array([2.0, 0.0]), front[:, :2], np.array([1.2, 1.2])) == 0.0


def test_non_dominated_keeps_one_of_equal_rows():
    points = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0]])
    assert non_dominated(points).tolist() == [[1.0, 2.0], [2.0, 1.0]]
