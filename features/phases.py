"""The phase-property table (``data/phases.json``) and the armor tables (``data/armor.json``).

Every value in those files carries its source; this module only turns them into NumPy arrays
ordered by ``PHASES`` so the featurizer and the data generator can work column-wise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from features.elements import PROPERTY_NAMES, load_element_table
from features.formula import element_counts

DATA_DIR = Path(__file__).parent / "data"

PHASES: tuple[str, ...] = ("SiC", "B4C", "Al2O3", "WC", "TiC", "TiB2", "ZrO2", "AlN", "Si3N4", "other")
OXIDE_PHASES = frozenset({"Al2O3", "ZrO2"})
PROPERTIES: tuple[str, ...] = (
    "density_g_cm3",
    "hardness_gpa",
    "toughness_mpa_m05",
    "elastic_modulus_gpa",
    "poisson_ratio",
    "flexural_strength_mpa",
    "compressive_strength_mpa",
    "melting_c",
    "densification_c",
)


@dataclass(frozen=True)
class PhaseTable:
    """Phase properties as arrays of shape (n_phases,), in the order of ``PHASES``."""

    density: np.ndarray
    hardness: np.ndarray
    toughness: np.ndarray
    elastic_modulus: np.ndarray
    poisson: np.ndarray
    flexural_strength: np.ndarray
    compressive_strength: np.ndarray
    melting_c: np.ndarray
    densification_c: np.ndarray
    non_oxide: np.ndarray

    @property
    def bulk_modulus(self) -> np.ndarray:
        """K = E / (3 (1 - 2 nu)), GPa."""
        return self.elastic_modulus / (3.0 * (1.0 - 2.0 * self.poisson))

    @property
    def shear_modulus(self) -> np.ndarray:
        """G = E / (2 (1 + nu)), GPa."""
        return self.elastic_modulus / (2.0 * (1.0 + self.poisson))


def _values(raw: dict[str, Any], prop: str) -> np.ndarray:
    return np.array([raw["phases"][p][prop]["value"] for p in PHASES], dtype=np.float64)


@cache
def load_phase_table() -> PhaseTable:
    """Read ``phases.json`` once per process (the file is part of the package, never changes)."""
    raw = json.loads((DATA_DIR / "phases.json").read_text())
    missing = [p for p in PHASES if p not in raw["phases"]]
    if missing:
        raise ValueError(f"phases.json lacks phases {missing}")
    names = [f.name for f in fields(PhaseTable)][: len(PROPERTIES)]
    columns = {name: _values(raw, prop) for name, prop in zip(names, PROPERTIES, strict=True)}
    non_oxide = np.array([p not in OXIDE_PHASES and p != "other" for p in PHASES], dtype=np.float64)
    return PhaseTable(**columns, non_oxide=non_oxide)


@cache
def load_armor_tables() -> dict[str, Any]:
    """Threats, backings and the documented defaults of a ballistic configuration."""
    return json.loads((DATA_DIR / "armor.json").read_text())


def validated_backings() -> tuple[str, ...]:
    """Backings the V50 relation holds for (``v50_relation_valid`` in armor.json)."""
    return tuple(name for name, b in load_armor_tables()["backings"].items() if b["v50_relation_valid"])


def weight_to_volume(weight_fractions: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Convert rows of weight fractions to volume fractions: V_i = (w_i/rho_i) / sum_j (w_j/rho_j)."""
    specific_volume = weight_fractions / density
    return specific_volume / specific_volume.sum(axis=1, keepdims=True)


AVOGADRO = 6.02214076e23  # 1/mol (SI, exact)


def formula_mass(formula: str) -> float:
    """g/mol of one formula unit, from the element table's standard atomic masses."""
    table = load_element_table()
    column = PROPERTY_NAMES.index("atomic_mass")
    return sum(n * float(table.values[table.index[e], column]) for e, n in element_counts(formula).items())


def cell_volume_angstrom3(lattice: dict[str, Any]) -> float:
    """Unit-cell volume of a cubic (a^3) or hexagonal (sqrt(3)/2 a^2 c) cell, in cubic angstroms."""
    a = float(lattice["a_angstrom"])
    if lattice["system"] == "cubic":
        return a**3
    if lattice["system"] == "hexagonal":
        return float(np.sqrt(3.0) / 2.0 * a * a * float(lattice["c_angstrom"]))
    raise ValueError(f"unsupported crystal system {lattice['system']!r}")


def crystal_density(lattice: dict[str, Any]) -> float:
    """Theoretical density Z M / (N_A V) in g/cm3 from a phase's ``lattice`` entry in phases.json."""
    mass_g = lattice["formula_units"] * formula_mass(lattice["formula"]) / AVOGADRO
    return mass_g / (cell_volume_angstrom3(lattice) * 1e-24)


def load_phase_hv1() -> dict[str, tuple[float, float]]:
    """{phase: (hardness GPa, load N)} for the phases whose table hardness is a dense-polycrystal
    Vickers value at a stated load (the anchors of the formula route, model_registry/hardness.py)."""
    raw = json.loads((DATA_DIR / "phases.json").read_text())
    out = {}
    for phase, props in raw["phases"].items():
        hv = props["hardness_gpa"]
        if hv.get("basis") == "dense_polycrystal" and "load_n" in hv:
            out[phase] = (float(hv["value"]), float(hv["load_n"]))
    return out
