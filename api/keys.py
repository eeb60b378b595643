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

from api.schemas import HardnessRequest, PredictionRequest
from features.batch import normalise_fractions
from features.phases import PHASES

_MATERIAL_BLOCKS = ("processing", "microstructure", "armor")


def _canonical_float(value: float) -> float:
    return float(f"{value:.10g}")


def _canonical_block(block: dict[str, Any]) -> dict[str, Any]:
    return {k: _canonical_float(v) if isinstance(v, float) else v for k, v in block.items()}


def canonical_material(request: PredictionRequest, family: str) -> dict[str, Any]:
    """The material as the model sees it: volume fractions summing to 1, defaults filled in."""
    weight = np.array([request.composition.basis == "weight"])
    fractions = normalise_fractions(np.array([request.composition.fractions()]), weight)[0]
    material = {"composition": {p: _canonical_float(f) for p, f in zip(PHASES, fractions, strict=True) if f > 0}}
    for block in _MATERIAL_BLOCKS:
        if block != "armor" or family == "ballistic":
            material[block] = _canonical_block(getattr(request, block).model_dump())
    return material


def digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]


def material_key(family: str, material: dict[str, Any]) -> str:
    return digest({"family": family, "material": material})


def response_key(
    family: str, material: dict[str, Any], model_tag: str, request: PredictionRequest | HardnessRequest
) -> str:
    return digest(
        {
            "family": family,
            "material": material,
            "model": model_tag,
            "uncertainty": request.include_uncertainty,
            "importance": request.include_feature_importance,
        }
    )
