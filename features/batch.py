"""Column arrays for N materials: the one representation the featurizer, the data generator
and CSV loading share. Categorical values become small integer codes (their index in the
tuples of ``features.schema``).

Columns (``MaterialBatch.from_columns``, ``material_columns``): ``fractions`` (N, phases),
``weight_basis`` (N,) and every input by name, categorical inputs as level names or codes.

Material rows (``MaterialBatch.to_rows``, ``from_rows``): the batch as one float64 array, how the
API sends materials to the runner, which featurises the rows of every API worker in one call
(runners/core.py): the volume fractions, then every other field in order, codes as floats.

Raw columns (``conforming``, ``with_defaults``): a table's cells decoded but not validated, for
the /batch routes, which check thousands of rows against the catalogue's ranges as arrays
instead of one request model each: ``fractions`` (N, phases), ``basis`` and every input by name,
a value not given being NaN (numbers) or "" (names). A cell that was not a number, or was NaN,
has no raw-column form: its row is validated one by one, which also words the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

import numpy as np

from features.catalogue import categorical_inputs, categorical_levels, inputs, numeric_inputs, numeric_names
from features.phases import PHASES, load_phase_table, weight_to_volume
from features.schema import SUM_TOLERANCE, Material

__all__ = [
    "NUMERIC_INPUTS",
    "MaterialBatch",
    "categorical_levels",
    "concat_columns",
    "conforming",
    "encode",
    "field_value",
    "material_columns",
    "MATERIAL_ROW_WIDTH",
    "normalise_fractions",
    "take_columns",
    "with_defaults",
]

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

    def to_rows(self) -> np.ndarray:
        """(N, ``MATERIAL_ROW_WIDTH``) float64 material rows (module doc)."""
        rest = [getattr(self, name) for name in _ROW_FIELDS]
        return np.column_stack([self.volume_fractions, *rest]).astype(np.float64, copy=False)

    @classmethod
    def from_rows(cls, rows: np.ndarray) -> MaterialBatch:
        """The batch of ``to_rows`` (codes range-checked as ``encode`` checks them)."""
        if rows.ndim != 2 or rows.shape[1] != MATERIAL_ROW_WIDTH:
            raise ValueError(f"expected material rows of {MATERIAL_ROW_WIDTH} columns, got shape {rows.shape}")
        phases, levels = len(PHASES), categorical_levels()
        columns = {name: rows[:, phases + i] for i, name in enumerate(_ROW_FIELDS)}
        codes = {name: encode(name, columns[name]) for name in levels}
        return cls(volume_fractions=rows[:, :phases], **(columns | codes))

    def take(self, index: np.ndarray) -> MaterialBatch:
        return MaterialBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def from_materials(cls, materials: list[Material]) -> MaterialBatch:
        """Validated request models to arrays (weight fractions converted to volume)."""
        return cls.from_columns(material_columns(materials))

    @classmethod
    def from_columns(cls, columns: dict[str, Any]) -> MaterialBatch:
        """Arrays (or lists) of raw values; categorical columns may be names or codes."""
        fractions = np.asarray(columns["fractions"], dtype=np.float64)
        weight = np.asarray(columns.get("weight_basis", np.zeros(len(fractions), bool)), dtype=bool)
        volume = normalise_fractions(fractions, weight)
        numeric = {name: np.asarray(columns[name], dtype=np.float64) for name in NUMERIC_INPUTS}
        codes = {name: encode(name, columns[name]) for name in categorical_levels()}
        return cls(volume_fractions=volume, **numeric, **codes)


# A material row (``MaterialBatch.to_rows``): the phases, then one column per other field, in this
# order (found once: ``fields`` was called on every runner call, on both sides of the hop)
_ROW_FIELDS = tuple(f.name for f in fields(MaterialBatch)[1:])
MATERIAL_ROW_WIDTH = len(PHASES) + len(_ROW_FIELDS)


def material_columns(materials: Sequence[Material]) -> dict[str, np.ndarray]:
    """Validated request models as columns (categorical inputs by level name)."""
    fractions = np.array([m.composition.fractions() for m in materials], dtype=np.float64)
    return {
        "fractions": fractions.reshape(len(materials), len(PHASES)),
        "weight_basis": np.array([m.composition.basis == "weight" for m in materials], dtype=bool),
        **{name: np.array([field_value(m, name) for m in materials], dtype=np.float64) for name in NUMERIC_INPUTS},
        **{name: np.array([field_value(m, name) for m in materials], dtype=str) for name in categorical_levels()},
    }


def take_columns(columns: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    """The rows ``index`` of every column."""
    return {name: column[index] for name, column in columns.items()}


def concat_columns(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The rows of several sets of the same columns, one set after the other."""
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


# Sums within this of the tolerance's edge are left to the request schema, whose sum (left to
# right in Python) may differ from NumPy's in the last bits.
SUM_MARGIN = 1e-9


def conforming(raw: dict[str, np.ndarray]) -> np.ndarray:
    """The rows of raw columns (module doc) that the request schema (``features.schema``) accepts:
    every given number finite and within its accepted range, every required input given, every
    given name a level of its input, the fractions summing to 1 within ``SUM_TOLERANCE``. A row
    refused here may still be accepted by the schema (a sum at the tolerance's edge): the caller
    validates those one by one, which also words their errors."""
    fractions = raw["fractions"]
    given = ~np.isnan(fractions)
    ok = np.all(~given | ((fractions >= 0.0) & (fractions <= 1.0)), axis=1)
    total = np.where(given, fractions, 0.0).sum(axis=1)
    ok &= np.abs(total - 1.0) <= SUM_TOLERANCE - SUM_MARGIN
    ok &= np.isin(raw["basis"], ("", "volume", "weight"))
    for spec in numeric_inputs():
        value = raw[spec.name]
        absent = np.isnan(value)
        ok &= (absent & (spec.default is not None)) | ((value >= spec.low) & (value <= spec.high))
    for level_spec in categorical_inputs():
        ok &= np.isin(raw[level_spec.name], ("", *level_spec.levels))
    return ok


def with_defaults(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Conforming raw columns as columns (``from_columns``), every value not given at its default."""
    fractions = raw["fractions"]
    columns = {
        "fractions": np.where(np.isnan(fractions), 0.0, fractions),
        "weight_basis": raw["basis"] == "weight",
    }
    for spec in numeric_inputs():
        value = raw[spec.name]
        default = np.nan if spec.default is None else spec.default  # a required input is given in conforming rows
        columns[spec.name] = np.where(np.isnan(value), default, value)
    for level_spec in categorical_inputs():
        names = raw[level_spec.name]
        columns[level_spec.name] = np.where(names == "", level_spec.default, names)
    return columns


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
