"""What differs between the model families on the way through the one prediction flow
(api/prediction/flow.py): how a validated request becomes its canonical form (what the cache key hashes),
its feature rows, and how the runner's packed answer becomes the response body.

- ``MaterialFamily`` (mechanical, ballistic): a material description of the ten phases, one row.
- ``FormulaFamily`` (hardness): a chemical formula at one or several loads, one row per load.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from api.prediction import domain, keys, responses
from api.prediction.feature_extractor import AsyncFeatureExtractor, PendingRows
from api.prediction.schemas import HardnessRequest, PredictionRequest
from api.transport.errors import InvalidInput
from features.composition import CompositionDomain, FormulaFeaturizer
from features.formula import Composition, FormulaError, parse_formula
from features.indentation import SizeEffectLaw
from runners.contract import ModelCard, Unpacked

Request = PredictionRequest | HardnessRequest


@dataclass
class Prepared:
    """A validated request ready for the flow."""

    canonical: dict[str, Any]  # what the response key hashes (with the family and the model tag)
    # the runner's rows, made on a cache miss only; ``pinned``: for a named model version (feature
    # rows), else for the default model, whose rows may be left to be encoded with the other rows
    # of their runner call (PendingRows, api/prediction/coalescer.py)
    rows: Callable[[bool], Awaitable[np.ndarray | PendingRows]]
    respond: Callable[[ModelCard, Unpacked], dict[str, Any]]  # the body from the runner's answer
    # fields of the answer that repeat the asker's own input: added to each answer, never stored
    # with the cached body, which holds only what the canonical form (the cache key) determines
    # (another client's text must not reach this one)
    echo: dict[str, Any] = field(default_factory=dict)


class Family(Protocol):
    @property
    def request_model(self) -> type[Request]: ...  # its route's body (validation errors name its fields)

    def prepare(self, request: Any) -> Prepared: ...


class MaterialFamily:
    """Mechanical and ballistic: one row per material; the runner featurises the default model's
    (runners/core.py), a pinned version's go through the feature cache."""

    request_model = PredictionRequest

    def __init__(self, family: str, extractor: AsyncFeatureExtractor):
        self.family, self.extractor = family, extractor

    def prepare(self, request: PredictionRequest) -> Prepared:
        if self.family == "ballistic":
            domain.refuse_unvalidated(request)
        material = keys.canonical_material(request, self.family)

        async def rows(pinned: bool) -> np.ndarray | PendingRows:
            if not pinned:  # the default model's: the runner featurises them
                return PendingRows([request])
            return self.extractor.rows(self.family, [request], [keys.material_key(self.family, material)])

        def respond(card: ModelCard, out: Unpacked) -> dict[str, Any]:
            return self._respond(request, material["composition"], card, out)

        return Prepared(material, rows, respond)

    def _respond(
        self, request: PredictionRequest, volume_fractions: dict[str, Any], card: ModelCard, out: Unpacked
    ) -> dict[str, Any]:
        warnings, outside = domain.check(request, volume_fractions, card.feature_ranges, card.family)
        body: dict[str, Any] = {
            "predictions": responses.predictions(
                card, out.values[0], out.lower[0], out.upper[0], request.include_uncertainty, outside
            ),
            "feature_importance": None,
            "contribution_base": None,
        }
        if card.family == "ballistic":
            warnings += domain.ballistic_warnings(request, dict(zip(card.targets, out.values[0], strict=True)))
            answer = (out.values[:1], out.lower[:1], out.upper[:1])
            (body["build"],) = responses.builds(
                [request], [volume_fractions], card, answer, request.include_uncertainty
            )
        body |= _importance(request, card, out)
        return body | {"model_info": responses.model_info(card), "warnings": warnings}


def _importance(request: Request, card: ModelCard, out: Unpacked) -> dict[str, Any]:
    """Feature importance and the contributions of the first row, when asked for."""
    if not request.include_feature_importance or out.contributions is None:
        return {}
    return {
        "feature_importance": responses.feature_importance(card, out.contributions[0]),
        "contribution_base": {t: float(out.base[0, o]) for o, t in enumerate(card.targets)},
    }


def _formula_error(exc: FormulaError) -> InvalidInput:
    return InvalidInput(
        f"invalid request: formula: {exc.message}",
        [{"field": "formula", "message": exc.message, "reason": exc.reason}],
    )


class FormulaFamily:
    """Hardness: a formula at one or several loads, one row per load; warnings from the measured
    data's domain stored on the model's card."""

    TARGET = "vickers_hardness"
    request_model = HardnessRequest

    def __init__(self, family: str = "hardness", featurizer: FormulaFeaturizer | None = None):
        self.family = family
        self.featurizer = featurizer or FormulaFeaturizer()
        self._domains: dict[str, CompositionDomain] = {}
        self._laws: dict[str, SizeEffectLaw | None] = {}

    def prepare(self, request: HardnessRequest) -> Prepared:
        loads = np.array(request.loads())
        try:
            composition = parse_formula(request.formula)
            self.featurizer.check(composition)  # refused before the cache lookup; features only on a miss
        except FormulaError as exc:
            raise _formula_error(exc) from None
        canonical = {"formula": composition.key, "loads": [float(f"{x:.10g}") for x in loads]}
        made: list[np.ndarray] = []  # computed once, by rows(), and read by respond()

        async def rows(pinned: bool) -> np.ndarray:  # feature rows for every model
            made.append(self.featurizer.transform([composition] * len(loads), loads))
            return made[0]

        def respond(card: ModelCard, out: Unpacked) -> dict[str, Any]:
            return self._respond(request, composition, made[0], card, out)

        return Prepared(canonical, rows, respond, {"formula": request.formula.strip()})

    def _domain(self, card: ModelCard) -> CompositionDomain | None:
        raw = card.metadata.get("domain")
        if raw is None:
            return None
        if card.tag not in self._domains:
            self._domains[card.tag] = CompositionDomain.from_dict(raw)
        return self._domains[card.tag]

    def _law(self, card: ModelCard) -> SizeEffectLaw | None:
        """The model's size-effect law from its card (None for a model trained without one)."""
        if card.tag not in self._laws:
            raw = card.metadata.get("size_effect_law")
            self._laws[card.tag] = SizeEffectLaw(**raw) if raw else None
        return self._laws[card.tag]

    def _warnings(self, composition: Composition, rows: np.ndarray, card: ModelCard) -> list[str]:
        found = self._domain(card)
        if found is None:
            return []
        per_row = found.warnings([composition] * len(rows), rows, self.featurizer.schema)
        return list(dict.fromkeys(w for row in per_row for w in row))  # each once, in order

    def _respond(
        self, request: HardnessRequest, composition: Composition, rows: np.ndarray, card: ModelCard, out: Unpacked
    ) -> dict[str, Any]:
        """The body the canonical form determines: the loads as canonicalised (10 significant
        digits), no formula (the flow adds the asker's own, ``Prepared.echo``)."""
        warnings = self._warnings(composition, rows, card)
        loads = [keys.canonical_float(load) for load in request.loads()]
        predictions = [
            {
                "load_n": load,
                self.TARGET: responses.property_entry(
                    self.TARGET,
                    float(out.values[i, 0]),
                    float(out.lower[i, 0]),
                    float(out.upper[i, 0]),
                    request.include_uncertainty,
                    bool(warnings),
                ),
            }
            for i, load in enumerate(loads)
        ]
        body: dict[str, Any] = {
            "composition": dict(zip(composition.elements, composition.fractions, strict=True)),
            "predictions": predictions,
            "load_dependence": load_dependence(np.array(loads), out.values[:, 0], self._law(card), rows[0]),
            "feature_importance": None,
            "contribution_base": None,
        }
        body |= _importance(request, card, out)
        return body | {"model_info": responses.model_info(card), "warnings": warnings}


def load_dependence(
    loads: np.ndarray, hardness: np.ndarray, law: SizeEffectLaw | None = None, row: np.ndarray | None = None
) -> dict[str, float] | None:
    """H = a * load^n fitted (least squares in log-log) over the requested loads, and with the
    model's size-effect law (the one the values follow) this composition's parameters of it: the
    load-independent hardness H0, the characteristic load P*, and the load below which the law is
    held with the hardness it is held at (``row``: the feature row of the first load); None with
    fewer than two distinct loads."""
    if len(np.unique(loads)) < 2:
        return None
    exponent, log_a = np.polyfit(np.log(loads), np.log(hardness), 1)
    out = {"exponent": float(exponent), "coefficient_gpa": float(np.exp(log_a))}
    if law is not None and row is not None:
        h0 = float(hardness[0]) / float(np.exp(law.log_factor(row[None, :]))[0])
        x = row[None, law.class_column]
        out["load_independent_gpa"] = h0
        out["characteristic_load_n"] = float(law.p_star(x)[0])
        out["plateau_load_n"] = float(law.min_load_n)
        out["plateau_gpa"] = h0 * float(law.plateau_factor(x)[0])
    return out
