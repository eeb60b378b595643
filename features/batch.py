"""Column arrays for N materials: the one representation the featurizer, the data generator
and CSV loading share. Categorical values become small integer codes (their index in the
tuples of ``features.schema``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Any

import numpy as np

from features.catalogue import categorical_levels, inputs, numeric_names
from features.phases import PHASES, load_phase_table, weight_to_volume
from features.schema import Material

__all__ = ["NUMERIC_INPUTS", "MaterialBatch", "categorical_levels", "encode", "field_value", "normalise_fractions"]

NUMERIC_INPUTS = numeric_names()


@dataclass
class MaterialBatch:
    """N materials as arrays; ``volume_fractions`` rows sum to exactly 1."""

    volume_fractions: np.ndarray
    sintering_temperature: np.ndarray
    pressure: np.ndarray
    grain_size: np.ndarray
    holding_time: np.ndarray
    heating_rate: np.ndarray
    porosity: np.ndarray
    pore_size: np.ndarray
    connectivity: np.ndarray
    tile_thickness: np.ndarray
    backing_thickness: np.ndarray
    atmosphere: np.ndarray
    phase_distribution: np.ndarray
    interface_quality: np.ndarray
    backing: np.ndarray
    threat: np.ndarray

    def __len__(self) -> int:
        return self.volume_fractions.shape[0]

    def take(self, index: np.ndarray) -> MaterialBatch:
        return MaterialBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def from_materials(cls, materials: list[Material]) -> MaterialBatch:
        """Validated request models to arrays (weight fractions converted to volume)."""
        fractions = np.array([m.composition.fractions() for m in materials], dtype=np.float64)
        weight = np.array([m.composition.basis == "weight" for m in materials])
        columns = {
            "fractions": fractions,
            "weight_basis": weight,
            **{name: [field_value(m, name) for m in materials] for name in NUMERIC_INPUTS},
            **{name: [field_value(m, name) for m in materials] for name in categorical_levels()},
        }
        return cls.from_columns(columns)

    @classmethod
    def from_columns(cls, columns: dict[str, Any]) -> MaterialBatch:
        """Arrays (or lists) of raw values; categorical columns may be names or codes."""
        fractions = np.asarray(columns["fractions"], dtype=np.float64)
        weight = np.asarray(columns.get("weight_basis", np.zeros(len(fractions), bool)), dtype=bool)
        volume = normalise_fractions(fractions, weight)
        numeric = {name: np.asarray(columns[name], dtype=np.float64) for name in NUMERIC_INPUTS}
        codes = {name: encode(name, columns[name]) for name in categorical_levels()}
        return cls(volume_fractions=volume, **numeric, **codes)


def normalise_fractions(fractions: np.ndarray, weight_basis: np.ndarray) -> np.ndarray:
    """Rows to volume fractions summing to exactly 1 (weight rows through the phase densities)."""
    if fractions.shape[1] != len(PHASES):
        raise ValueError(f"expected {len(PHASES)} phase columns {list(PHASES)}, got {fractions.shape[1]}")
    totals = fractions.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError("every material needs at least one phase fraction above 0")
    fractions = fractions / totals
    if weight_basis.any():
        density = load_phase_table().density
        fractions = np.where(weight_basis[:, None], weight_to_volume(fractions, density), fractions)
    return fractions


def encode(name: str, values: Any) -> np.ndarray:
    """Names to integer codes; integer codes pass through after a range check."""
    levels = categorical_levels()[name]
    values = np.asarray(values)
    if values.dtype.kind in "iuf":
        codes = values.astype(np.int64)
    else:
        lookup = {level: i for i, level in enumerate(levels)}
        unknown = sorted(set(values.tolist()) - lookup.keys())
        if unknown:
            raise ValueError(f"{name}: unknown value(s) {unknown}; known: {list(levels)}")
        codes = np.array([lookup[v] for v in values.tolist()], dtype=np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= len(levels)):
        raise ValueError(f"{name}: codes must be in 0..{len(levels) - 1}")
    return codes


@cache
def _block_of() -> dict[str, str]:
    """Input name -> the request block that holds it (from the catalogue)."""
    return {spec.name: spec.block for spec in inputs()}


def field_value(material: Material, name: str) -> Any:
    """The value of an input of any block of a validated material (KeyError if there is none)."""
    return getattr(getattr(material, _block_of()[name]), name)
