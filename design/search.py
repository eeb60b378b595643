"""The search: optuna's NSGA-II (Deb et al. 2002) through its ask/tell interface, one generation a
block of candidates evaluated together (design/evaluate.py), until the evaluations or the seconds
run out. Constraint violations go to the sampler (constrained domination), so a search that starts
infeasible is pulled towards the feasible region; a candidate outside the training range is
infeasible when the request asks to exclude those.

Why optuna's NSGA-II and not quasi-Monte-Carlo plus a non-dominated sort: a Sobol sequence fills the
box evenly but never concentrates where the front is, so at equal evaluations it is random search
with better spacing; the benchmark (loadtests/design_bench.py) asks the optimiser to beat random
search. Optuna is a kept library with seeded, tested samplers, and its ask/tell interface lets the
runner see a whole generation at once. The sampler's work runs on a thread (about 0.8 ms a
candidate, measured), not on the event loop.

``events`` yields a progress event per generation, then the answer.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from design.evaluate import Candidate, Evaluator
from design.explore import suggest
from design.pareto import Front
from design.spec import Problem

OPTIMIZER = {"optimize": "optuna NSGA-II", "explore": "optuna NSGA-II", "random": "optuna random sampler"}
# A generation: enough candidates for the runner to batch, enough generations for NSGA-II to move.
MIN_POPULATION, MAX_POPULATION, GENERATIONS = 16, 128, 20


def population(max_evaluations: int) -> int:
    return int(min(max(max_evaluations // GENERATIONS, MIN_POPULATION), MAX_POPULATION))


def violations(problem: Problem, candidate: Candidate) -> list[float]:
    """Per constraint (then out-of-domain, when excluded): 0 when met, else how far off, relative
    to the limit."""
    found = []
    for c in problem.constraints:
        value = c.quantity.of(candidate.predictions)
        gap = value - c.limit if c.upper else c.limit - value
        found.append(0.0 if c.met(candidate.predictions) else max(gap, 1e-12) / max(abs(c.limit), 1e-9))
    if problem.exclude_outside:
        found.append(float(candidate.outside))
    return found


class GenerationalNSGAII(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II, told which generation a new trial belongs to.

    The search asks a whole generation, evaluates it, tells it, and only then asks the next, so a
    trial's generation is the search's counter (``generation``, advanced by the search). Optuna's
    own rule counts the newest generation's completed trials by scanning every trial at each ask,
    and looks the parents up with another scan: O(trials) an ask, which made a 5,000-trial study
    spend 3.5 s a generation of 128 (measured). Both are O(1) an ask here, and the trials sampled
    are the same as optuna's own sampler's for the same seed (tests/test_design_search.py).
    """

    def __init__(self, population_size: int, seed: int):
        super().__init__(population_size=population_size, seed=seed)
        self.generation = 0
        self._parents: dict[int, list[FrozenTrial]] = {}

    def get_trial_generation(self, study: optuna.Study, trial: FrozenTrial) -> int:
        key = self._get_generation_key()
        known = trial.system_attrs.get(key)
        if known is not None:
            return int(known)
        study._storage.set_trial_system_attr(trial._trial_id, key, self.generation)
        return self.generation

    def get_parent_population(self, study: optuna.Study, generation: int) -> list[FrozenTrial]:
        """As optuna gives them: in selection order when selected, then in trial order (its cached
        path reads them back from the study); only the current generation's are kept."""
        if generation in self._parents:
            return self._parents[generation]
        selected = super().get_parent_population(study, generation)
        self._parents = {generation: sorted(selected, key=lambda trial: trial.number)}
        return selected


def _sampler(problem: Problem, size: int) -> optuna.samplers.BaseSampler:
    if problem.strategy == "random":
        return optuna.samplers.RandomSampler(seed=problem.seed)
    return GenerationalNSGAII(population_size=size, seed=problem.seed)


@dataclass
class Tally:
    """What the search has seen: the front, the closest infeasible candidates, the counts."""

    front: Front[Candidate]
    closest: list[tuple[float, int, Candidate, list[float]]] = field(default_factory=list)  # worst first
    pool: list[Candidate] = field(default_factory=list)  # every feasible candidate (explore only)
    evaluations: int = 0
    feasible: int = 0
    refused: int = 0
    outside: int = 0  # candidates with an input outside a model's training range
    first_feasible: tuple[int, float] | None = None  # evaluation number, seconds


class Search:
    def __init__(self, problem: Problem, evaluator: Evaluator):
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line a candidate otherwise
        self.problem, self.evaluator = problem, evaluator
        self.population = population(problem.max_evaluations)
        directions: list[optuna.study.StudyDirection] = [optuna.study.StudyDirection.MINIMIZE] * len(problem.objectives)
        self.sampler = _sampler(problem, self.population)
        self.study = optuna.create_study(directions=directions, sampler=self.sampler)
        self.distributions = problem.space.distributions()
        self.tally = Tally(Front(len(problem.objectives)))
        self.started = time.perf_counter()
        self.stopped = "max_evaluations"

    def _elapsed(self) -> float:
        return time.perf_counter() - self.started

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """``{"progress": ...}`` after every generation, then the answer."""
        self.started = time.perf_counter()
        while self.tally.evaluations < self.problem.max_evaluations:
            if self._elapsed() >= self.problem.max_seconds:
                self.stopped = "max_seconds"
                break
            size = min(self.population, self.problem.max_evaluations - self.tally.evaluations)
            trials = await asyncio.to_thread(self._ask, size)
            candidates = await self.evaluator.evaluate([self.problem.space.body(t.params) for t in trials])
            await asyncio.to_thread(self._tell, trials, candidates)
            if isinstance(self.sampler, GenerationalNSGAII):
                self.sampler.generation += 1
            yield {"progress": self._progress()}
        yield self.answer()

    def _ask(self, size: int) -> list[Trial]:
        return [self.study.ask(self.distributions) for _ in range(size)]

    def _tell(self, trials: list[Trial], candidates: list[Candidate]) -> None:
        for trial, candidate in zip(trials, candidates, strict=True):
            self.tally.evaluations += 1
            if candidate.error is not None:
                self.tally.refused += 1
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            losses = [o.loss(candidate.predictions) for o in self.problem.objectives]
            off = violations(self.problem, candidate)
            self.tally.outside += candidate.outside
            for i, amount in enumerate(off):
                trial.set_constraint(f"c{i}", amount)
            self.study.tell(trial, losses)
            self._record(candidate, np.asarray(losses), off)

    def _record(self, candidate: Candidate, losses: np.ndarray, off: list[float]) -> None:
        tally = self.tally
        if any(off):
            entry = (-sum(off), tally.evaluations, candidate, off)
            push = heapq.heappush if len(tally.closest) < self.problem.closest else heapq.heappushpop
            push(tally.closest, entry)
            return
        tally.feasible += 1
        if tally.first_feasible is None:
            tally.first_feasible = (tally.evaluations, self._elapsed())
        tally.front.offer(losses, candidate)
        if self.problem.strategy == "explore":
            tally.pool.append(candidate)

    def _reference(self) -> np.ndarray:
        given = [
            None if o.reference is None else (-o.reference if o.maximize else o.reference)
            for o in self.problem.objectives
        ]
        return self.tally.front.reference(given)

    def _progress(self) -> dict[str, Any]:
        tally = self.tally
        return {
            "evaluations": tally.evaluations,
            "max_evaluations": self.problem.max_evaluations,
            "feasible": tally.feasible,
            "front": len(tally.front.items),
            "hypervolume": tally.front.hypervolume(self._reference()) if tally.feasible else 0.0,
            "elapsed_s": self._elapsed(),
        }

    def _objective_values(self, losses: np.ndarray) -> dict[str, float]:
        return {o.text: float(-v if o.maximize else v) for o, v in zip(self.problem.objectives, losses, strict=True)}

    def answer(self) -> dict[str, Any]:
        front = self.tally.front
        order = np.lexsort(front.losses.T[::-1]) if len(front.losses) else np.zeros(0, dtype=np.int64)
        entries = [front.items[i].entry() | {"objectives": self._objective_values(front.losses[i])} for i in order]
        answer: dict[str, Any] = {"front": entries, "closest": self._closest() if not entries else []}
        if self.problem.strategy == "explore":
            answer["suggestions"] = suggest(self.problem, self.tally.pool, front.losses, self._reference())
        return answer | {"summary": self._summary()}

    def _closest(self) -> list[dict[str, Any]]:
        names = [*self.problem.constraint_texts, "out_of_domain"]
        ranked = sorted(self.tally.closest, key=lambda e: (-e[0], e[1]))
        return [
            c.entry() | {"violations": [{"constraint": names[i], "violation": v} for i, v in enumerate(off) if v]}
            for _, _, c, off in ranked
        ]

    def _summary(self) -> dict[str, Any]:
        tally, elapsed = self.tally, self._elapsed()
        reference = self._reference() if tally.feasible else None
        first = tally.first_feasible
        return {
            "evaluations": tally.evaluations,
            "feasible": tally.feasible,
            "feasible_share": tally.feasible / tally.evaluations if tally.evaluations else 0.0,
            "refused": tally.refused,
            "out_of_domain": tally.outside,
            "hypervolume": tally.front.hypervolume(reference) if reference is not None else 0.0,
            "reference": None if reference is None else self._objective_values(reference),
            "front": len(tally.front.items),
            "first_feasible_evaluation": None if first is None else first[0],
            "first_feasible_s": None if first is None else first[1],
            "elapsed_s": elapsed,
            "evaluations_per_s": tally.evaluations / elapsed if elapsed > 0 else 0.0,
            "stopped": self.stopped,
            "strategy": self.problem.strategy,
            "optimizer": OPTIMIZER[self.problem.strategy],
            "population": self.population,
            "models": self.evaluator.models(),
        }
