"""Canonical form of a validated request and stable keys derived from it.

Requests that mean the same thing share a key: key order does not matter (sorted on
serialisation), omitted defaults equal explicit ones (pydantic fills them), 0.6 equals 0.60
(floats are canonicalised to 10 significant digits), weight fractions are converted to volume
fractions, and a mechanical request ignores the armor block (it does not affect that family).
The response key adds the model tag, so a new model never serves an old answer.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import orjson

from api.prediction.schemas import AnswerOptions, PredictionRequest
from features.batch import normalise_fractions
from features.catalogue import BALLISTIC_ONLY_BLOCKS, BLOCKS, block_inputs, numeric_names
from features.phases import PHASES

_NUMERIC = frozenset(numeric_names())


def canonical_float(value: float) -> float:
    return float(f"{value:.10g}")


def _canonical_block(block: dict[str, Any]) -> dict[str, Any]:
    return {k: canonical_float(v) if isinstance(v, float) else v for k, v in block.items()}


def canonical_material(request: PredictionRequest, family: str) -> dict[str, Any]:
    """The material as the model sees it: volume fractions summing to 1, defaults filled in."""
    weight = np.array([request.composition.basis == "weight"])
    fractions = normalise_fractions(np.array([request.composition.fractions()]), weight)[0]
    material = {"composition": {p: canonical_float(f) for p, f in zip(PHASES, fractions, strict=True) if f > 0}}
    for block in BLOCKS:
        if block not in BALLISTIC_ONLY_BLOCKS or family == "ballistic":
            material[block] = _canonical_block(getattr(request, block).model_dump())
    return material


def canonical_materials(family: str, columns: dict[str, np.ndarray], volume: np.ndarray) -> list[dict[str, Any]]:
    """``canonical_material`` of every row of validated columns (``volume``: their volume
    fractions); each distinct number is canonicalised once."""
    # by value; zeros are their own canonical form, and 0.0 and -0.0 would share an entry
    canonical: dict[float, float] = {}

    def canon(values: list[Any]) -> list[Any]:
        return [
            v if v == 0.0 else canonical[v] if v in canonical else canonical.setdefault(v, canonical_float(v))
            for v in values
        ]

    compositions: list[dict[str, float]] = [{} for _ in range(len(volume))]
    rows, phases = np.nonzero(volume > 0)  # row by row, each row's phases in the order of PHASES
    for row, phase, value in zip(rows.tolist(), phases.tolist(), canon(volume[rows, phases].tolist()), strict=True):
        compositions[row][PHASES[phase]] = value
    materials: list[dict[str, Any]] = [{"composition": composition} for composition in compositions]
    for block in BLOCKS:
        if block in BALLISTIC_ONLY_BLOCKS and family != "ballistic":
            continue
        names = [spec.name for spec in block_inputs(block)]
        values = [canon(columns[n].tolist()) if n in _NUMERIC else columns[n].tolist() for n in names]
        for material, inputs in zip(materials, zip(*values, strict=True), strict=True):
            material[block] = dict(zip(names, inputs, strict=True))
    return materials


def digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]


def material_key(family: str, material: dict[str, Any]) -> str:
    return digest({"family": family, "material": material})


def response_key(family: str, material: dict[str, Any], model_tag: str, options: AnswerOptions) -> str:
    return digest(
        {
            "family": family,
            "material": material,
            "model": model_tag,
            "uncertainty": options.include_uncertainty,
            "importance": options.include_feature_importance,
        }
    )
