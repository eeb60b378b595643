"""Build the prediction response from the model's packed output and its registry card."""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from features.catalogue import UNITS
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
