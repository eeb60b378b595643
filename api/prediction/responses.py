"""Build the prediction response from the model's packed output and its registry card."""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from features.ballistics import Build, build_of
from features.catalogue import BUILD_UNITS, UNITS
from features.schema import Material
from runners.contract import ModelCard

# Quality from the interval's relative half-width; one level worse when the domain check
# found an input outside the training range.
QUALITY_LEVELS = ("excellent", "good", "fair", "poor")
QUALITY_LIMITS = (0.05, 0.10, 0.20)


def prediction_quality(relative_half_width: float, outside_domain: bool) -> str:
    # bisect, not np.searchsorted: the same index (NaN sorting last) at a tenth of the cost per
    # call, which a /batch route pays once per target and row
    x = relative_half_width
    level = bisect.bisect_left(QUALITY_LIMITS, x) if x == x else len(QUALITY_LIMITS)
    return QUALITY_LEVELS[min(level + int(outside_domain), len(QUALITY_LEVELS) - 1)]


def property_entry(
    target: str, value: float, low: float, high: float, with_interval: bool, outside: bool
) -> dict[str, Any]:
    entry = {
        "value": value,
        "unit": UNITS[target],
        "confidence_interval": None,
        "uncertainty": None,
        "prediction_quality": None,
    }
    if with_interval:
        relative = (high - low) / 2.0 / max(abs(value), 1e-12)
        entry.update(
            confidence_interval=[low, high],
            uncertainty=relative,
            prediction_quality=prediction_quality(relative, outside),
        )
    return entry


def predictions(
    card: ModelCard, values: np.ndarray, lower: np.ndarray, upper: np.ndarray, with_interval: bool, outside: bool
) -> dict[str, Any]:
    return {
        t: property_entry(t, float(values[i]), float(lower[i]), float(upper[i]), with_interval, outside)
        for i, t in enumerate(card.targets)
    }


def build_entry(build: Build, threat: str, v50: tuple[float, float, float], with_interval: bool) -> dict[str, Any]:
    """The build's areal density and the V50 margin over the threat's reference velocity
    (``v50``: value, lower, upper; the margin's interval is the V50 interval shifted)."""
    reference = build.threat_velocity
    value, low, high = v50
    return {
        "areal_density": {
            "value": build.areal_density,
            "unit": BUILD_UNITS["areal_density"],
            "tile": build.tile_areal_density,
            "backing": build.backing_areal_density,
        },
        "v50_margin": {
            "value": value - reference,
            "unit": BUILD_UNITS["v50_margin"],
            "threat": threat,
            "reference_velocity": reference,
            "confidence_interval": [low - reference, high - reference] if with_interval else None,
        },
    }


def builds(
    materials: list[Material],
    compositions: list[dict[str, float]],
    card: ModelCard,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
    with_interval: bool,
) -> list[dict[str, Any]]:
    """``build_entry`` of every ballistic material of a runner answer (``out``: values, lower,
    upper, each of shape (N, targets)); ``compositions``: their volume fractions by phase. One
    function for the single and the batch route, so both give the same numbers."""
    o = card.targets.index("v50_velocity")
    v50 = zip(*(a[:, o].tolist() for a in out), strict=True)
    builds = []
    for material, composition, v in zip(materials, compositions, v50, strict=True):
        armor = material.armor
        build = build_of(
            composition,
            material.microstructure.porosity,
            armor.tile_thickness,
            armor.backing,
            armor.backing_thickness,
            armor.threat,
        )
        builds.append(build_entry(build, armor.threat, v, with_interval))
    return builds


def feature_importance(card: ModelCard, contributions: np.ndarray) -> list[dict[str, Any]]:
    """Global importance from the registry with this prediction's per-target contributions,
    most important first. ``contributions`` has shape (F, O)."""
    importance = card.feature_importance
    rows = [
        {
            "name": name,
            "importance": float(importance.get(name, 0.0)),
            "category": category,
            "contribution": {t: float(contributions[j, o]) for o, t in enumerate(card.targets)},
        }
        for j, (name, category) in enumerate(zip(card.feature_names, card.feature_categories, strict=True))
    ]
    return sorted(rows, key=lambda r: r["importance"], reverse=True)


def model_info(card: ModelCard) -> dict[str, Any]:
    return {
        "name": card.name,
        "version": card.version,
        "trained_at": card.created_at,
        "training_samples": card.training_samples,
        "metrics": card.metrics,
    }
