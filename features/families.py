"""Every family's feature schema, whatever its input: a material description (``Featurizer``:
mechanical, ballistic) or a chemical formula and a load (``FormulaFeaturizer``: hardness)."""

from __future__ import annotations

from features.catalogue import FAMILIES, FORMULA_FAMILIES
from features.composition import FormulaFeaturizer
from features.featurizer import FeatureSchema, Featurizer

ALL_FAMILIES: tuple[str, ...] = (*FAMILIES, *FORMULA_FAMILIES)


def feature_schema(family: str) -> FeatureSchema:
    """Names, order and categories of the family's feature columns (raises ValueError if unknown)."""
    if family in FORMULA_FAMILIES:
        return FormulaFeaturizer().schema
    return Featurizer(family).schema
