"""design/search.py: the generational NSGA-II samples what optuna's own does; violations; the
population size."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from design.search import MAX_POPULATION, MIN_POPULATION, GenerationalNSGAII, population


def _sampled(sampler: optuna.samplers.NSGAIISampler, generations: int, size: int) -> list[dict[str, float]]:
    """A two-objective constrained study asked and told a generation at a time, as the search does."""
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    space = {f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(3)}
    for _ in range(generations):
        trials = [study.ask(space) for _ in range(size)]
        for trial in trials:
            x = np.array(list(trial.params.values()))
            trial.set_constraint("c0", float(max(x[0] - 0.8, 0.0)))
            study.tell(trial, [float(x.sum()), float(((1 - x) ** 2).sum())])
        if isinstance(sampler, GenerationalNSGAII):
            sampler.generation += 1
    return [trial.params for trial in study.trials]


def test_the_generational_sampler_asks_what_optunas_nsga_ii_asks():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = _sampled(GenerationalNSGAII(population_size=8, seed=4), 10, 8)
    theirs = _sampled(optuna.samplers.NSGAIISampler(population_size=8, seed=4), 10, 8)
    assert ours == theirs and len(ours) == 80


@pytest.mark.parametrize(
    "budget, expected", [(1, MIN_POPULATION), (320, MIN_POPULATION), (2000, 100), (10**6, MAX_POPULATION)]
)
def test_population_is_a_twentieth_of_the_budget_within_bounds(budget, expected):
    assert population(budget) == expected
