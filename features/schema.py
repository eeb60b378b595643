"""The material description a client sends, validated with pydantic.

Ranges and units here are the API contract: a value outside them is refused with a message
that names the range and the unit. Fractions that sum to 1 +- 0.01 are accepted and
renormalised to exactly 1 by the featurizer.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from features.phases import PHASES, load_armor_tables

SUM_TOLERANCE = 0.01
ATMOSPHERES = ("air", "argon", "nitrogen", "vacuum", "hydrogen")
PHASE_DISTRIBUTIONS = ("uniform", "gradient", "layered")
INTERFACE_QUALITIES = ("poor", "fair", "good", "excellent")


def bounded(low: float, high: float, unit: str, default: float | None = None, doc: str = ""):
    """A finite float field limited to [low, high] whose error message states range and unit."""

    def check(value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g} {unit}, got {value:g}".rstrip())
        return float(value)

    field = Field(
        default=default if default is not None else ...,
        description=f"{doc} [{low:g}-{high:g} {unit}]".strip(),
        json_schema_extra={"minimum": low, "maximum": high, "unit": unit},
    )
    return Annotated[float, Field(allow_inf_nan=True), AfterValidator(check), field]


Fraction = bounded(0.0, 1.0, "(fraction)", default=0.0)
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Composition(BaseModel):
    """Phase fractions (volume by default; weight when ``basis`` is "weight")."""

    model_config = _STRICT
    SiC: Fraction = 0.0
    B4C: Fraction = 0.0
    Al2O3: Fraction = 0.0
    WC: Fraction = 0.0
    TiC: Fraction = 0.0
    TiB2: Fraction = 0.0
    ZrO2: Fraction = 0.0
    AlN: Fraction = 0.0
    Si3N4: Fraction = 0.0
    other: Fraction = 0.0
    basis: Literal["volume", "weight"] = "volume"

    @model_validator(mode="before")
    @classmethod
    def _known_phases(cls, data):
        if isinstance(data, dict):
            unknown = sorted(k for k in data if k not in PHASES and k != "basis")
            if unknown:
                raise ValueError(f"unknown phase(s) {unknown}; known phases: {list(PHASES)}")
        return data

    @model_validator(mode="after")
    def _sums_to_one(self):
        total = sum(self.fractions())
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise ValueError(f"phase fractions must sum to 1 +- {SUM_TOLERANCE}, they sum to {total:.4f}")
        return self

    def fractions(self) -> list[float]:
        return [getattr(self, p) for p in PHASES]


class Processing(BaseModel):
    model_config = _STRICT
    sintering_temperature: bounded(1200, 2500, "degC", doc="sintering temperature")
    pressure: bounded(1, 200, "MPa", default=50.0, doc="applied pressure")
    grain_size: bounded(0.1, 100, "um", default=10.0, doc="mean grain size")
    holding_time: bounded(1, 1440, "min", default=120.0, doc="holding time at temperature")
    heating_rate: bounded(1, 100, "degC/min", default=15.0, doc="heating rate")
    atmosphere: Literal[ATMOSPHERES] = "argon"


class Microstructure(BaseModel):
    model_config = _STRICT
    porosity: bounded(0, 0.3, "(volume fraction)", default=0.02, doc="porosity")
    pore_size: bounded(0.01, 100, "um", default=1.0, doc="mean pore size")
    connectivity: bounded(0, 1, "(0-1)", default=0.1, doc="pore connectivity")
    phase_distribution: Literal[PHASE_DISTRIBUTIONS] = "uniform"
    interface_quality: Literal[INTERFACE_QUALITIES] = "good"


def _armor_default(key: str):
    return load_armor_tables()["defaults"][key]


class ArmorConfig(BaseModel):
    """Tile, backing and threat for the ballistic family (defaults in features/data/armor.json)."""

    model_config = _STRICT
    tile_thickness: bounded(2, 50, "mm", default=_armor_default("tile_thickness_mm"), doc="ceramic tile thickness")
    backing: Literal[tuple(load_armor_tables()["backings"])] = _armor_default("backing")
    backing_thickness: bounded(1, 50, "mm", default=_armor_default("backing_thickness_mm"), doc="backing thickness")
    threat: Literal[tuple(load_armor_tables()["threats"])] = _armor_default("threat")


class Material(BaseModel):
    """A ceramic described by composition, processing and microstructure."""

    model_config = _STRICT
    composition: Composition
    processing: Processing
    microstructure: Microstructure = Microstructure()
    armor: ArmorConfig = ArmorConfig()


# Inputs whose accepted range spans decades: swept and sampled on a log scale.
LOG_SCALED_INPUTS = ("pressure", "grain_size", "holding_time", "heating_rate", "pore_size", "tile_thickness",
                     "backing_thickness")
NUMERIC_BLOCKS = {"processing": Processing, "microstructure": Microstructure, "armor": ArmorConfig}


def input_bounds() -> dict[str, tuple[float, float, str]]:
    """Accepted range and unit of every numeric input, read from the field definitions above."""
    out = {}
    for block in NUMERIC_BLOCKS.values():
        for name, info in block.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "minimum" in extra:
                out[name] = (float(extra["minimum"]), float(extra["maximum"]), str(extra["unit"]))
    return out
