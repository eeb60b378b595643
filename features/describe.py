"""The catalogue as one JSON document for clients (``GET /api/v1/catalogue``; the web page in ui/
builds its forms from it): families and their targets with units, the phases and how their
fractions must sum, every input with its block, unit, accepted range, default and scale, and the
armor levels (threats with their reference velocity, backings with whether the V50 relation holds).
Everything is read from ``features.catalogue`` and ``features/data/armor.json``; nothing is typed
here twice."""

from __future__ import annotations

from typing import Any

from features.catalogue import (
    FORMULA_TARGETS,
    INDENTATION_LOAD,
    TARGETS,
    UNITS,
    CategoricalInput,
    Input,
    NumericInput,
    inputs,
)
from features.formula import MAX_FORMULA_LENGTH
from features.phases import PHASES, load_armor_tables
from features.schema import SUM_TOLERANCE


def _numeric(spec: NumericInput) -> dict[str, Any]:
    return {
        "name": spec.name,
        "block": spec.block,
        "kind": "number",
        "unit": spec.unit,
        "low": spec.low,
        "high": spec.high,
        "default": spec.default,
        "required": spec.default is None,
        "log_scaled": spec.log_scaled,
        "doc": spec.doc,
    }


def _categorical(spec: CategoricalInput) -> dict[str, Any]:
    return {
        "name": spec.name,
        "block": spec.block,
        "kind": "choice",
        "levels": list(spec.levels),
        "default": spec.default,
        "required": False,
        "doc": spec.doc,
    }


def _input(spec: Input) -> dict[str, Any]:
    return _numeric(spec) if isinstance(spec, NumericInput) else _categorical(spec)


def _armor() -> dict[str, Any]:
    tables = load_armor_tables()
    threats = {
        name: {"reference_velocity_m_s": t["velocity_m_s"], "core": t["core"], "source": t["source"]}
        for name, t in tables["threats"].items()
    }
    backings = {name: {"v50_relation_valid": b["v50_relation_valid"]} for name, b in tables["backings"].items()}
    return {"threats": threats, "backings": backings}


def document() -> dict[str, Any]:
    """A fresh dict (callers may add to it)."""
    families = {f: {"input": "material", "targets": list(t)} for f, t in TARGETS.items()}
    families |= {f: {"input": "formula", "targets": list(t)} for f, t in FORMULA_TARGETS.items()}
    return {
        "families": families,
        "units": dict(UNITS),
        "phases": list(PHASES),
        "composition": {"sum": 1.0, "tolerance": SUM_TOLERANCE, "bases": ["volume", "weight"]},
        "inputs": [_input(spec) for spec in inputs()],
        "formula": {"max_length": MAX_FORMULA_LENGTH, "load": _numeric(INDENTATION_LOAD)},
        "armor": _armor(),
    }
