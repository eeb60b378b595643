"""The training table as CSV: one row per material, raw inputs and (possibly missing) targets.

Columns: the phase names of features.phases.PHASES (volume fractions, or weight fractions when
an optional ``basis`` column says "weight"), the numeric inputs of features.batch.NUMERIC_INPUTS,
the categorical inputs by name, and any of the eleven targets; an empty target cell is
missing. Armor columns may be left out: the documented defaults fill them.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from features.batch import NUMERIC_INPUTS, MaterialBatch, categorical_levels
from features.catalogue import TARGETS, UNITS
from features.phases import PHASES, load_armor_tables

ALL_TARGETS = tuple(t for family in TARGETS.values() for t in family)
_ARMOR_DEFAULTS = {
    "tile_thickness": "tile_thickness_mm",
    "backing_thickness": "backing_thickness_mm",
    "backing": "backing",
    "threat": "threat",
}


class DatasetError(ValueError):
    """The CSV cannot be used for training; the message names the column or row."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_csv(path: Path, batch: MaterialBatch, targets: dict[str, np.ndarray]) -> None:
    levels = categorical_levels()
    header = [*PHASES, *NUMERIC_INPUTS, *levels, *targets]
    columns = [*batch.volume_fractions.T, *(getattr(batch, n) for n in NUMERIC_INPUTS)]
    columns += [np.take(levels[n], getattr(batch, n)) for n in levels]
    columns += [targets[t] for t in targets]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in zip(*columns, strict=False):
            writer.writerow([f"{v:.6g}" if isinstance(v, float | np.floating) else v for v in row])


def read_csv(path: Path) -> tuple[MaterialBatch, dict[str, np.ndarray]]:
    """Inputs and the targets present (NaN where a cell is empty)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    columns = {name: [r.get(name) for r in rows] for name in rows[0]}
    batch = MaterialBatch.from_columns(_input_columns(columns, len(rows), path))
    targets = {t: _floats(columns[t], t, path) for t in ALL_TARGETS if t in columns}
    if not targets:
        raise DatasetError(f"{path}: no target column; expected some of {list(ALL_TARGETS)} ({UNITS})")
    return batch, targets


def _input_columns(columns: dict, n: int, path: Path) -> dict:
    defaults = load_armor_tables()["defaults"]
    for name, key in _ARMOR_DEFAULTS.items():
        columns.setdefault(name, [defaults[key]] * n)
    missing = [c for c in (*NUMERIC_INPUTS, *categorical_levels()) if c not in columns]
    if missing:
        raise DatasetError(f"{path}: missing input column(s) {missing}")
    fractions = np.column_stack([_floats(columns.get(p, ["0"] * n), p, path, fill=0.0) for p in PHASES])
    try:
        return {
            "fractions": fractions,
            "weight_basis": [b == "weight" for b in columns.get("basis", [""] * n)],
            **{c: _floats(columns[c], c, path) for c in NUMERIC_INPUTS},
            **{c: columns[c] for c in categorical_levels()},
        }
    except ValueError as exc:
        raise DatasetError(f"{path}: {exc}") from exc


def _floats(values: list, column: str, path: Path, fill: float = np.nan) -> np.ndarray:
    try:
        return np.array([float(v) if v not in (None, "") else fill for v in values])
    except ValueError as exc:
        raise DatasetError(f"{path}: column {column!r}: {exc}") from exc
