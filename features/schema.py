"""The material description a client sends, validated with pydantic.

Ranges and units (``features.catalogue``) are the API contract: a value outside them is refused
with a message that names the range and the unit. Fractions that sum to 1 +- 0.01 are accepted and
renormalised to exactly 1 by the featurizer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator

from features.catalogue import Input, NumericInput, block_inputs
from features.phases import PHASES

SUM_TOLERANCE = 0.01


def bounded(low: float, high: float, unit: str, default: float | None = None, doc: str = "") -> Any:
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


if TYPE_CHECKING:  # the fields below are built at run time; to a type checker they are floats
    Fraction = float
else:
    Fraction = bounded(0.0, 1.0, "(fraction)", default=0.0)
# Unknown fields are refused, and so is coercion: "1800" is not a temperature and true is not a
# fraction (an integer is a number, though).
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class Composition(BaseModel):
    """Phase fractions (volume by default; weight when ``basis`` is "weight") that sum to 1 +- 0.01."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "minProperties": 1,
            "description": (
                "phase fractions (volume by default, weight with basis=weight); at least one phase, the fractions "
                f"summing to 1 +- {SUM_TOLERANCE}"
            ),
        },
    )
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
    def _known_phases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(k for k in data if k not in PHASES and k != "basis")
            if unknown:
                raise ValueError(f"unknown phase(s) {unknown}; known phases: {list(PHASES)}")
        return data

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        total = sum(self.fractions())
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise ValueError(f"phase fractions must sum to 1 +- {SUM_TOLERANCE}, they sum to {total:.4f}")
        return self

    def fractions(self) -> list[float]:
        return [getattr(self, p) for p in PHASES]


def _field(spec: Input) -> tuple[Any, Any]:
    """The pydantic field of one catalogue input."""
    if isinstance(spec, NumericInput):
        return (
            bounded(spec.low, spec.high, spec.unit, default=spec.default, doc=spec.doc),
            ... if spec.default is None else spec.default,
        )
    return Literal[spec.levels], Field(spec.default, description=spec.doc)


def _block_model(block: str, doc: str) -> type[BaseModel]:
    fields: dict[str, Any] = {spec.name: _field(spec) for spec in block_inputs(block)}
    return create_model(
        block.capitalize() if block != "armor" else "ArmorConfig", __config__=_STRICT, __doc__=doc, **fields
    )


if TYPE_CHECKING:  # built from the catalogue at run time: to a type checker, models of any field

    class _Block(BaseModel):
        def __getattr__(self, name: str) -> Any: ...

    Processing = _Block
    Microstructure = _Block
    ArmorConfig = _Block
else:
    Processing = _block_model("processing", "How the ceramic was made.")
    Microstructure = _block_model("microstructure", "Pores, phase distribution and interfaces.")
    ArmorConfig = _block_model(
        "armor", "Tile, backing and threat for the ballistic family (defaults in features/data/armor.json)."
    )


class Material(BaseModel):
    """A ceramic described by composition, processing and microstructure."""

    model_config = _STRICT
    composition: Composition
    processing: Processing
    microstructure: Microstructure = Microstructure()
    armor: ArmorConfig = ArmorConfig()
