"""Formulas and indentation loads in, an N x F float matrix out (the ``hardness`` family).

Magpie-style composition features (Ward et al., npj Comput. Mater. 2, 16028, 2016): for every
element property of ``features.elements`` the fraction-weighted mean, the minimum and maximum over
the elements present, their range and the fraction-weighted mean absolute deviation from the mean;
then the stoichiometry (number of elements, L2/L3/L5/L7/L10 norms of the fractions), the share of
valence electrons in s, p, d and f subshells, and the ionic character (Pauling's
1 - exp(-(dX)^2 / 4), its maximum over element pairs and its fraction-weighted mean). Last, the
load: ``load_n`` and ``log_load`` (ln of the load in N), so the model can learn the indentation
size effect.

Computed in array operations over a padded (N, M) element-index/fraction layout, M the largest
number of elements in the batch, once per distinct composition (a formula asked at several loads
is featurised once). ``CompositionDomain`` holds what the training data covered, for warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.catalogue import FORMULA_FAMILIES
from features.elements import PROPERTY_NAMES, ElementTable, load_element_table
from features.featurizer import FeatureSchema
from features.formula import Composition, FormulaError, parse_formula

FAMILY = FORMULA_FAMILIES[0]
STATISTICS = ("mean", "min", "max", "range", "mad")
NORMS = (2, 3, 5, 7, 10)
LOAD_COLUMNS = ("load_n", "log_load")
DISTANCE_STATISTIC = "mean"  # the domain distance is measured on the weighted means of the properties
NEIGHBOUR_PERCENTILE = 99.0  # training nearest-neighbour distances below which a composition counts as covered


def _composition_names() -> tuple[str, ...]:
    stats = tuple(f"{s}_{p}" for s in STATISTICS for p in PROPERTY_NAMES)
    stoichiometry = ("n_elements", *(f"norm_{p}" for p in NORMS))
    valence = tuple(f"valence_fraction_{s}" for s in "spdf")
    return (*stats, *stoichiometry, *valence, "max_ionic_character", "mean_ionic_character")


@dataclass(frozen=True)
class _Padded:
    """Distinct compositions as (U, M) element rows of the table and fractions (0 = padding)."""

    rows: np.ndarray
    fractions: np.ndarray

    @property
    def present(self) -> np.ndarray:
        return self.fractions > 0


def _pad(compositions: Sequence[Composition], table: ElementTable) -> _Padded:
    width = max(len(c.elements) for c in compositions)
    rows = np.zeros((len(compositions), width), dtype=np.int64)
    fractions = np.zeros((len(compositions), width))
    for i, c in enumerate(compositions):
        rows[i, : len(c.elements)] = [_row(table, e, c.formula) for e in c.elements]
        fractions[i, : len(c.elements)] = c.fractions
    return _Padded(rows, fractions)


def _row(table: ElementTable, symbol: str, formula: str) -> int:
    row = table.index[symbol]
    if not table.complete[row]:
        missing = [p for p, v in zip(PROPERTY_NAMES, table.values[row], strict=True) if np.isnan(v)]
        raise FormulaError(
            "element_without_data",
            f'element "{symbol}" in "{formula}" has no {", ".join(missing)} in the element table: '
            "the service cannot describe it",
        )
    return row


def _statistics(padded: _Padded, values: np.ndarray) -> np.ndarray:
    """(U, 5K) mean, min, max, range and mean absolute deviation of every property."""
    v = values[padded.rows]  # (U, M, K)
    f, present = padded.fractions[:, :, None], padded.present[:, :, None]
    mean = (f * v).sum(axis=1)
    low = np.where(present, v, np.inf).min(axis=1)
    high = np.where(present, v, -np.inf).max(axis=1)
    mad = (f * np.abs(v - mean[:, None, :])).sum(axis=1)
    return np.hstack([mean, low, high, high - low, mad])


def _stoichiometry(padded: _Padded) -> np.ndarray:
    f = padded.fractions
    norms = [(f**p).sum(axis=1) ** (1.0 / p) for p in NORMS]
    return np.column_stack([padded.present.sum(axis=1).astype(np.float64), *norms])


def _valence_fractions(mean: np.ndarray) -> np.ndarray:
    """Share of the mean valence electrons in s, p, d, f (every complete element has some)."""
    column = {p: i for i, p in enumerate(PROPERTY_NAMES)}
    shells = mean[:, [column[f"valence_{s}"] for s in "spdf"]]
    return shells / mean[:, [column["valence_total"]]]


def _ionic_character(padded: _Padded, electronegativity: np.ndarray) -> np.ndarray:
    """(U, 2) maximum and fraction-weighted mean of 1 - exp(-(X_i - X_j)^2 / 4) over element pairs."""
    x, f = electronegativity[padded.rows], padded.fractions
    pair = 1.0 - np.exp(-0.25 * (x[:, :, None] - x[:, None, :]) ** 2)  # (U, M, M)
    both = padded.present[:, :, None] & padded.present[:, None, :]
    return np.column_stack([np.where(both, pair, 0.0).max(axis=(1, 2)), np.einsum("ui,uij,uj->u", f, pair, f)])


def composition_matrix(compositions: Sequence[Composition], table: ElementTable) -> np.ndarray:
    """(U, C) composition features of distinct compositions, in ``_composition_names()`` order."""
    padded = _pad(compositions, table)
    stats = _statistics(padded, table.values)
    mean = stats[:, : len(PROPERTY_NAMES)]
    electronegativity = table.values[:, PROPERTY_NAMES.index("electronegativity")]
    return np.hstack(
        [stats, _stoichiometry(padded), _valence_fractions(mean), _ionic_character(padded, electronegativity)]
    )


def load_columns(loads_n: np.ndarray) -> np.ndarray:
    """(N, 2) load in N and its natural log; a load must be a positive finite number."""
    loads = np.asarray(loads_n, dtype=np.float64)
    if not np.all(np.isfinite(loads) & (loads > 0)):
        raise ValueError("every indentation load must be a positive number of newtons")
    return np.column_stack([loads, np.log(loads)])


class FormulaFeaturizer:
    """Builds the feature matrix of the ``hardness`` family from parsed formulas and loads."""

    def __init__(self, table: ElementTable | None = None):
        self.table = table if table is not None else load_element_table()
        names = (*_composition_names(), *LOAD_COLUMNS)
        categories = ("composition",) * (len(names) - len(LOAD_COLUMNS)) + ("load",) * len(LOAD_COLUMNS)
        self.schema = FeatureSchema(FAMILY, names, categories)

    def check(self, composition: Composition) -> None:
        """Raise ``FormulaError`` (``element_without_data``) if the table cannot describe one of the
        composition's elements; cheap, for refusing a request before any featurisation."""
        for symbol in composition.elements:
            _row(self.table, symbol, composition.formula)

    def transform(self, compositions: Sequence[Composition], loads_n: np.ndarray) -> np.ndarray:
        """(N, F) float64 matrix in ``self.schema.names`` order: row i is composition i at load i.
        Raises ``FormulaError`` (an element without data) or ``ValueError`` (a bad load)."""
        if len(compositions) != len(loads_n):
            raise ValueError(f"{len(compositions)} compositions but {len(loads_n)} loads")
        loads = load_columns(loads_n)
        if not compositions:
            return np.empty((0, len(self.schema.names)))
        distinct: dict[str, Composition] = {}
        for c in compositions:
            distinct.setdefault(c.key, c)
        order = {key: i for i, key in enumerate(distinct)}
        features = composition_matrix(list(distinct.values()), self.table)
        return np.hstack([features[[order[c.key] for c in compositions]], loads])

    def transform_formulas(self, formulas: Sequence[str], loads_n: np.ndarray) -> np.ndarray:
        """Parse, then ``transform`` (raises ``FormulaError`` for the first bad formula)."""
        return self.transform([parse_formula(f) for f in formulas], loads_n)


@dataclass(frozen=True)
class CompositionDomain:
    """What the measured training data covered: its elements, its loads, and its compositions as
    standardised points in the space of the property means, with the distance beyond which a
    composition counts as far from all of them (the training set's own 99th percentile of
    leave-one-out nearest-neighbour distances)."""

    elements: tuple[str, ...]
    load_range: tuple[float, float]
    columns: tuple[str, ...]
    center: np.ndarray  # (D,) training mean of each column
    scale: np.ndarray  # (D,) training standard deviation
    reference: np.ndarray  # (n_compositions, D) standardised training compositions
    formulas: tuple[str, ...]  # the formula of each reference row, to name the nearest one
    threshold: float

    @classmethod
    def fit(cls, compositions: Sequence[Composition], X: np.ndarray, schema: FeatureSchema) -> CompositionDomain:
        columns = tuple(n for n in schema.names if n.startswith(f"{DISTANCE_STATISTIC}_"))
        index = np.array([schema.names.index(n) for n in columns])
        seen: dict[str, int] = {}
        for i, c in enumerate(compositions):
            seen.setdefault(c.key, i)
        rows = np.array(list(seen.values()))
        points = X[np.ix_(rows, index)]
        center, scale = points.mean(axis=0), points.std(axis=0) + 1e-12
        reference = (points - center) / scale
        loads = X[:, schema.names.index("load_n")]
        return cls(
            elements=tuple(sorted({e for c in compositions for e in c.elements})),
            load_range=(float(loads.min()), float(loads.max())),
            columns=columns,
            center=center,
            scale=scale,
            reference=reference,
            formulas=tuple(compositions[i].formula for i in rows),
            threshold=float(np.percentile(_leave_one_out_distances(reference), NEIGHBOUR_PERCENTILE)),
        )

    def nearest(self, X: np.ndarray, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
        """Distance of each row to the nearest training composition, and that composition's index."""
        points = (X[:, [schema.names.index(n) for n in self.columns]] - self.center) / self.scale
        distances = np.sqrt(((points[:, None, :] - self.reference[None, :, :]) ** 2).sum(axis=2))
        nearest = distances.argmin(axis=1)
        return distances[np.arange(len(X)), nearest], nearest

    def warnings(self, compositions: Sequence[Composition], X: np.ndarray, schema: FeatureSchema) -> list[list[str]]:
        """Per row, what lies outside the measured data (flagged, never refused)."""
        distance, nearest = self.nearest(X, schema)
        loads = X[:, schema.names.index("load_n")]
        known = set(self.elements)
        out = []
        for c, d, j, load in zip(compositions, distance, nearest, loads, strict=True):
            row = []
            unseen = [e for e in c.elements if e not in known]
            if unseen:
                row.append(
                    f"element(s) {', '.join(unseen)} not in the measured training data: the prediction extrapolates"
                )
            if d > self.threshold:
                row.append(
                    f"composition far from the measured data: distance {d:.2f} to the nearest measured composition "
                    f"({self.formulas[j]}) exceeds {self.threshold:.2f}, the 99th percentile within the training set"
                )
            low, high = self.load_range
            if not low <= load <= high:
                row.append(f"load {load:g} N outside the measured loads ({low:g}-{high:g} N)")
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "elements": list(self.elements),
            "load_range": list(self.load_range),
            "columns": list(self.columns),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "reference": np.round(self.reference, 4).tolist(),
            "formulas": list(self.formulas),
            "threshold": self.threshold,
            "neighbour_percentile": NEIGHBOUR_PERCENTILE,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CompositionDomain:
        low, high = raw["load_range"]
        return cls(
            elements=tuple(raw["elements"]),
            load_range=(float(low), float(high)),
            columns=tuple(raw["columns"]),
            center=np.array(raw["center"], dtype=np.float64),
            scale=np.array(raw["scale"], dtype=np.float64),
            reference=np.array(raw["reference"], dtype=np.float64),
            formulas=tuple(raw["formulas"]),
            threshold=float(raw["threshold"]),
        )


def _leave_one_out_distances(points: np.ndarray) -> np.ndarray:
    """Distance of every point to its nearest other point."""
    distances = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(distances, np.inf)
    return distances.min(axis=1)
