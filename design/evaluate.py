"""Candidates through the /batch routes' path (api/batch/flow.py): a block of bodies is validated as
arrays, featurised through the feature cache and sent to the runner in chunks of MAX_BATCH_SIZE
rows, by both families at once when the build has armor. Each candidate gets the predictions,
warnings and build the single routes give for its body, merged over the families.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from api.batch.flow import BatchRun, ChunkOutcomes, Outcome, RawRow
from api.prediction import domain, keys
from api.prediction.schemas import BatchOptions, PredictionRequest
from api.transport.errors import ServiceUnavailable
from features.catalogue import categorical_inputs, numeric_inputs
from features.phases import PHASES
from runners.contract import ModelCard

if TYPE_CHECKING:
    from api.core import ServiceCore

_FLAGS = ("include_uncertainty", "include_feature_importance", "model_version")


@dataclass
class Candidate:
    """One evaluated body: both families' predictions (by target), warnings, build, and whether an
    input lies outside a model's training range."""

    request: dict[str, Any]
    predictions: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    build: dict[str, Any] | None = None
    outside: bool = False
    error: dict[str, Any] | None = None  # a row the batch path refused (never expected: the bodies are valid)

    def entry(self) -> dict[str, Any]:
        """As the answer lists it: the body, and what the single routes answer for it."""
        out: dict[str, Any] = {"request": self.request, "predictions": self.predictions, "warnings": self.warnings}
        if self.build is not None:
            out["build"] = self.build
        return out | {"out_of_domain": self.outside}


@dataclass
class CandidateBlock:
    """Bodies as a block of the batch flow (api/batch/flow.py ``Block``), all as raw columns."""

    bodies: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.bodies)

    def raw(self, position: int) -> RawRow:
        body = self.bodies[position]
        return RawRow(position, {k: v for k, v in body.items() if k not in _FLAGS})

    def row(self, position: int) -> int:
        return position

    def columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = len(self.bodies)
        raw: dict[str, np.ndarray] = {"fractions": np.full((n, len(PHASES)), np.nan)}
        for i, body in enumerate(self.bodies):
            for phase, share in body["composition"].items():
                if phase in PHASES:  # not "basis"
                    raw["fractions"][i, PHASES.index(phase)] = share
        raw["basis"] = np.array([b["composition"].get("basis", "") for b in self.bodies], dtype=object)
        for spec in numeric_inputs():
            raw[spec.name] = np.array([b.get(spec.block, {}).get(spec.name, np.nan) for b in self.bodies], dtype=float)
        for level in categorical_inputs():
            raw[level.name] = np.array([b.get(level.block, {}).get(level.name, "") for b in self.bodies], dtype=object)
        return np.arange(n), raw


def _outside(done: ChunkOutcomes, item: Outcome | int, body: dict[str, Any], card: ModelCard) -> bool:
    """Whether the domain check found an input outside the training range: from the runner's
    answer, or (a row answered from the response cache) by checking the body again."""
    if isinstance(item, int) and done.answers is not None:
        return done.answers.outside[item]
    request = PredictionRequest.model_validate(body)
    material = keys.canonical_material(request, card.family)
    return domain.check(request, material["composition"], card.feature_ranges, card.family)[1]


class Evaluator:
    """One BatchRun per family for the whole search (the model is resolved once)."""

    def __init__(self, runs: dict[str, BatchRun]):
        self.runs = runs
        self.evaluations = 0

    @classmethod
    async def start(cls, core: ServiceCore, families: tuple[str, ...]) -> Evaluator:
        options = BatchOptions(include_uncertainty=True)
        return cls({family: await BatchRun.start(core, family, options) for family in families})

    async def evaluate(self, bodies: list[dict[str, Any]]) -> list[Candidate]:
        candidates = [Candidate(body) for body in bodies]
        answers = await asyncio.gather(*(self._family(f, bodies) for f in self.runs))
        for per_family in answers:
            for candidate, (outcome, outside) in zip(candidates, per_family, strict=True):
                _merge(candidate, outcome, outside)
        self.evaluations += len(bodies)
        return candidates

    async def _family(self, family: str, bodies: list[dict[str, Any]]) -> list[tuple[Outcome, bool]]:
        run = self.runs[family]
        found: list[tuple[Outcome, bool]] = []
        async for done in run.chunks([CandidateBlock(bodies)]):
            for item, outcome in zip(done.items, done.outcomes(), strict=True):
                if outcome.get("error", {}).get("status") == 503:
                    raise run.unavailable or ServiceUnavailable(outcome["error"]["message"])
                body = bodies[len(found)]
                found.append((outcome, "error" not in outcome and _outside(done, item, body, run.card)))
        return found

    def models(self) -> dict[str, Any]:
        """model_info of every model that answered, by tag."""
        return {tag: info for run in self.runs.values() for tag, info in run.models.items()}


def _merge(candidate: Candidate, outcome: Outcome, outside: bool) -> None:
    if "error" in outcome:
        candidate.error = outcome["error"]
        return
    candidate.predictions |= outcome["predictions"]
    candidate.warnings += [w for w in outcome["warnings"] if w not in candidate.warnings]
    candidate.build = outcome.get("build", candidate.build)
    candidate.outside |= outside
