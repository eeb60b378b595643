"""One owner for what the service knows about its inputs and outputs.

Families, targets and their units, and every input of a material description with its block,
unit, accepted range, default and scale. The request schema (``features.schema``), the column
arrays (``features.batch``), the featurizer, the domain check, the data generator, the sweep and
the responses all read them here: adding an input or a target is one edit here plus its data.
Armor levels and defaults come from ``features/data/armor.json`` (sourced values).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from features.phases import load_armor_tables

FAMILIES = ("mechanical", "ballistic")
MECHANICAL_TARGETS = (
    "density",
    "vickers_hardness",
    "fracture_toughness",
    "elastic_modulus",
    "flexural_strength",
    "compressive_strength",
    "poisson_ratio",
)
BALLISTIC_TARGETS = ("v50_velocity", "penetration_resistance", "back_face_deformation", "multi_hit_capability")
TARGETS: dict[str, tuple[str, ...]] = {"mechanical": MECHANICAL_TARGETS, "ballistic": BALLISTIC_TARGETS}
UNITS = {
    "density": "g/cm3",
    "vickers_hardness": "GPa",
    "fracture_toughness": "MPa*m^0.5",
    "elastic_modulus": "GPa",
    "flexural_strength": "MPa",
    "compressive_strength": "MPa",
    "poisson_ratio": "dimensionless",
    "v50_velocity": "m/s",
    "penetration_resistance": "dimensionless",
    "back_face_deformation": "mm",
    "multi_hit_capability": "probability (0-1)",
}
# Build-level quantities every ballistic answer carries beside its targets (features.ballistics.Build):
# computed from the inputs and the predicted V50, not learned.
BUILD_UNITS = {"areal_density": "kg/m2", "v50_margin": "m/s"}

BLOCKS = ("processing", "microstructure", "armor")
BALLISTIC_ONLY_BLOCKS = frozenset({"armor"})


@dataclass(frozen=True)
class NumericInput:
    name: str
    block: str
    low: float
    high: float
    unit: str
    default: float | None  # None: required
    doc: str
    log_scaled: bool = False  # its range spans decades: sampled and swept on a log scale


@dataclass(frozen=True)
class CategoricalInput:
    name: str
    block: str
    levels: tuple[str, ...]
    default: str
    doc: str


Input = NumericInput | CategoricalInput

# Families whose input is a chemical formula and an indentation load (``features.composition``),
# learned from measured data (``model_registry.hardness``). Kept apart from ``FAMILIES``, whose
# input is a material description of the ten phases.
FORMULA_FAMILIES = ("hardness",)
FORMULA_TARGETS: dict[str, tuple[str, ...]] = {"hardness": ("vickers_hardness",)}
# Accepted loads: a guard around the measured data (0.0015-49 N in data/vickers_hardness_measured.csv),
# not a validity claim; a load outside the training loads is flagged by the domain check.
INDENTATION_LOAD = NumericInput(
    "load_n", "indentation", 0.001, 100.0, "N", 9.8, "Vickers indentation load", log_scaled=True
)


def _armor(key: str) -> Any:
    return load_armor_tables()["defaults"][key]


@cache
def inputs() -> tuple[Input, ...]:
    """Every input, in the order of the request blocks (and of the feature columns)."""
    armor = load_armor_tables()
    return (
        NumericInput("sintering_temperature", "processing", 1200, 2500, "degC", None, "sintering temperature"),
        NumericInput("pressure", "processing", 1, 200, "MPa", 50.0, "applied pressure", log_scaled=True),
        NumericInput("grain_size", "processing", 0.1, 100, "um", 10.0, "mean grain size", log_scaled=True),
        NumericInput(
            "holding_time", "processing", 1, 1440, "min", 120.0, "holding time at temperature", log_scaled=True
        ),
        NumericInput("heating_rate", "processing", 1, 100, "degC/min", 15.0, "heating rate", log_scaled=True),
        CategoricalInput(
            "atmosphere",
            "processing",
            ("air", "argon", "nitrogen", "vacuum", "hydrogen"),
            "argon",
            "sintering atmosphere",
        ),
        NumericInput("porosity", "microstructure", 0, 0.3, "(volume fraction)", 0.02, "porosity"),
        NumericInput("pore_size", "microstructure", 0.01, 100, "um", 1.0, "mean pore size", log_scaled=True),
        NumericInput("connectivity", "microstructure", 0, 1, "(0-1)", 0.1, "pore connectivity"),
        CategoricalInput(
            "phase_distribution", "microstructure", ("uniform", "gradient", "layered"), "uniform", "phase distribution"
        ),
        CategoricalInput(
            "interface_quality", "microstructure", ("poor", "fair", "good", "excellent"), "good", "interface quality"
        ),
        NumericInput(
            "tile_thickness",
            "armor",
            2,
            50,
            "mm",
            _armor("tile_thickness_mm"),
            "ceramic tile thickness",
            log_scaled=True,
        ),
        CategoricalInput("backing", "armor", tuple(armor["backings"]), _armor("backing"), "backing material"),
        NumericInput(
            "backing_thickness",
            "armor",
            1,
            50,
            "mm",
            _armor("backing_thickness_mm"),
            "backing thickness",
            log_scaled=True,
        ),
        CategoricalInput("threat", "armor", tuple(armor["threats"]), _armor("threat"), "threat"),
    )


@cache
def numeric_inputs() -> tuple[NumericInput, ...]:
    return tuple(i for i in inputs() if isinstance(i, NumericInput))


@cache
def categorical_inputs() -> tuple[CategoricalInput, ...]:
    return tuple(i for i in inputs() if isinstance(i, CategoricalInput))


@cache
def numeric_names() -> tuple[str, ...]:
    return tuple(i.name for i in numeric_inputs())


def numeric_input(name: str) -> NumericInput:
    return next(i for i in numeric_inputs() if i.name == name)


@cache
def block_inputs(block: str) -> tuple[Input, ...]:
    return tuple(i for i in inputs() if i.block == block)


@cache
def family_numeric_inputs(family: str) -> tuple[NumericInput, ...]:
    """The numeric inputs a family's models see (armor inputs are ballistic only)."""
    return tuple(i for i in numeric_inputs() if family == "ballistic" or i.block not in BALLISTIC_ONLY_BLOCKS)


def categorical_levels() -> dict[str, tuple[str, ...]]:
    """Levels of each categorical input, in code order (a fresh dict: callers may not share it)."""
    return {i.name: i.levels for i in categorical_inputs()}
