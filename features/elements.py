"""Element descriptors for the composition features, generated from pymatgen-core's periodic
table and committed as ``features/data/elements.csv`` (never typed by hand).

Why pymatgen-core and not mendeleev (measured 2026-11, Python 3.11, 2 cores, fresh processes,
numpy already imported, ~20 properties read for Z = 1..103, three runs each):

==========================  ===============  ================  ========================
library                     import           lookup, 103 el.   RSS added (import; +lookup)
==========================  ===============  ================  ========================
pymatgen-core 2026.10.16    0.08-0.13 s      0.03-0.05 s       +16 MB; +16 MB
mendeleev 1.3.0 (element)   0.72-1.06 s      35-47 s           +74 MB; +125 MB
mendeleev 1.3.0 (tables)    0.92-1.03 s      0.05 s            +74 MB; +81 MB
==========================  ===============  ================  ========================

- Coverage of the 65 elements of the measured hardness data: pymatgen has every property used
  here for all of them; mendeleev lacks the Pauling electronegativity of Eu, Tb and Yb and the
  electron affinity of 11 (Mg, Mn, Zn, Cd, Sm, Gd, Ho, Er, Hg, Th, U).
- Against pymatgen: it installs ~20 packages (matplotlib, plotly, sympy, spglib, ...), mendeleev
  9 (SQLAlchemy, Pint, pyfiglet, ...); and it has no covalent radius (Magpie's is Cordero's), so
  the empirical atomic radius (Slater 1964) stands in for it.

Because of that install weight the service never imports the library: it reads the committed
table, which ``python -m features.elements --write`` regenerates and
``tests/test_features_composition.py`` checks against the library (skipped where it is absent).
The library is pinned in pyproject's optional group ``elements`` and in requirements-dev.lock.

Left out on purpose: the elemental bulk, shear and Young's moduli and the solid density are in
pymatgen but missing for B, C, N, O and Si (and more), exactly the elements of the ceramics here;
any imputation would dominate those columns.

Missing values: a property the library does not give for an element is an empty cell in the
CSV and NaN in ``ElementTable.values``. Nothing is imputed: an element without the full set of
properties (noble gases, At, Fr, Cm and heavier) is not ``complete``, and featurising a formula
that contains one raises ``FormulaError`` (reason ``element_without_data``), so no NaN reaches a
model.

Valence counts follow Magpie (Ward et al., npj Comput. Mater. 2, 16028, 2016): the electrons
outside the preceding noble-gas core, by subshell (Pb: 6s2 6p2 5d10 4f14 -> s 2, p 2, d 10,
f 14); an occupied subshell's unfilled count is its capacity minus its electrons.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

TABLE_PATH = Path(__file__).parent / "data" / "elements.csv"
LIBRARY = "pymatgen-core"
MAX_ATOMIC_NUMBER = 118

NOBLE_GAS_Z = (2, 10, 18, 36, 54, 86)
SUBSHELLS = ("s", "p", "d", "f")
CAPACITY = {"s": 2, "p": 6, "d": 10, "f": 14}


@dataclass(frozen=True)
class ElementProperty:
    name: str
    unit: str
    doc: str


PROPERTIES: tuple[ElementProperty, ...] = (
    ElementProperty("atomic_number", "-", "Z"),
    ElementProperty("mendeleev_number", "-", "Pettifor's Mendeleev number (pymatgen mendeleev_no)"),
    ElementProperty("atomic_mass", "u", "standard atomic mass"),
    ElementProperty("period", "-", "row of the periodic table"),
    ElementProperty("group", "-", "column of the periodic table (lanthanides, actinides: 3)"),
    ElementProperty("atomic_radius", "angstrom", "empirical atomic radius (Slater 1964)"),
    ElementProperty("electronegativity", "Pauling", "Pauling electronegativity"),
    ElementProperty("melting_point", "K", "melting point of the element"),
    ElementProperty("molar_volume", "cm3/mol", "molar volume of the element"),
    ElementProperty("ionization_energy", "eV", "first ionisation energy"),
    ElementProperty("electron_affinity", "eV", "electron affinity"),
    *(ElementProperty(f"valence_{s}", "electrons", f"{s} electrons outside the noble-gas core") for s in SUBSHELLS),
    ElementProperty("valence_total", "electrons", "electrons outside the noble-gas core"),
    *(
        ElementProperty(f"unfilled_{s}", "states", f"empty {s} states of an occupied valence subshell")
        for s in SUBSHELLS
    ),
    ElementProperty("unfilled_total", "states", "empty states of the occupied valence subshells"),
)
PROPERTY_NAMES: tuple[str, ...] = tuple(p.name for p in PROPERTIES)


@dataclass(frozen=True)
class ElementTable:
    """Element properties as an (E, K) array, rows in ``symbols`` order, columns ``PROPERTY_NAMES``."""

    symbols: tuple[str, ...]
    values: np.ndarray  # NaN where the library has no value
    complete: np.ndarray  # (E,) bool: every property present (the elements a formula may use)
    index: dict[str, int]  # symbol -> row


@cache
def load_element_table(path: Path = TABLE_PATH) -> ElementTable:
    """The committed table (read once per process)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    symbols = tuple(r["symbol"] for r in rows)
    values = np.array([[float(r[p]) if r[p] != "" else np.nan for p in PROPERTY_NAMES] for r in rows])
    complete = ~np.isnan(values).any(axis=1)
    return ElementTable(symbols, values, complete, {s: i for i, s in enumerate(symbols)})


@cache
def complete_symbols() -> frozenset[str]:
    """The symbols a formula may use: every property of the table present."""
    table = load_element_table()
    return frozenset(s for s, complete in zip(table.symbols, table.complete, strict=True) if complete)


def known_symbols() -> frozenset[str]:
    """Every element symbol of the table (Z = 1..118), with or without complete data."""
    return frozenset(load_element_table().symbols)


# ----------------------------------------------------------------------------------------------
# Generation from the library (only `--write` and the table test import pymatgen)


# Property -> the pymatgen ``Element`` attribute it is read from.
LIBRARY_ATTRIBUTES = {
    "mendeleev_number": "mendeleev_no",
    "atomic_mass": "atomic_mass",
    "period": "row",
    "group": "group",
    "atomic_radius": "atomic_radius",
    "electronegativity": "X",
    "melting_point": "melting_point",
    "molar_volume": "molar_volume",
    "ionization_energy": "ionization_energy",
    "electron_affinity": "electron_affinity",
}


def _number(element: Any, attribute: str) -> float:
    """The library's value as a float, NaN where it has none (None, NaN or no data entry)."""
    try:
        value = getattr(element, attribute)
    except (KeyError, ValueError, TypeError, AttributeError):
        return math.nan
    if value is None:
        return math.nan
    number = float(value)
    return number if math.isfinite(number) else math.nan


def _valence(element: Any, core: Any | None) -> dict[str, float]:
    """Magpie valence and unfilled counts from the library's full electronic structure."""
    try:
        shells = element.full_electronic_structure
    except (KeyError, ValueError):
        return {f"{kind}_{s}": math.nan for kind in ("valence", "unfilled") for s in (*SUBSHELLS, "total")}
    core_shells = {(n, subshell) for n, subshell, _ in core.full_electronic_structure} if core is not None else set()
    counts = dict.fromkeys(SUBSHELLS, 0)
    for n, subshell, electrons in shells:
        if (n, subshell) not in core_shells:
            counts[subshell] += electrons
    unfilled = {s: (CAPACITY[s] - counts[s]) if counts[s] > 0 else 0 for s in SUBSHELLS}
    out = {f"valence_{s}": float(counts[s]) for s in SUBSHELLS} | {
        f"unfilled_{s}": float(unfilled[s]) for s in SUBSHELLS
    }
    out["valence_total"] = float(sum(counts.values()))
    out["unfilled_total"] = float(sum(unfilled.values()))
    return out


def library_rows() -> list[dict[str, Any]]:
    """One dict per element Z = 1..118 straight from pymatgen-core (raises ImportError without it)."""
    from pymatgen.core.periodic_table import Element

    rows = []
    with warnings.catch_warnings():  # pymatgen warns for every value it lacks; NaN records that
        warnings.simplefilter("ignore")
        for z in range(1, MAX_ATOMIC_NUMBER + 1):
            e = Element.from_Z(z)
            core_z = max((c for c in NOBLE_GAS_Z if c < z), default=None)
            core = Element.from_Z(core_z) if core_z else None
            row: dict[str, Any] = {"symbol": e.symbol, "atomic_number": float(z)}
            row |= {name: _number(e, attribute) for name, attribute in LIBRARY_ATTRIBUTES.items()}
            rows.append(row | _valence(e, core))
    return rows


def write_table(path: Path = TABLE_PATH) -> None:
    rows = library_rows()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["symbol", *PROPERTY_NAMES])
        for row in rows:
            writer.writerow([row["symbol"], *(_cell(row[p]) for p in PROPERTY_NAMES)])


def _cell(value: float) -> str:
    """Shortest exact text of the float (round-trips), empty for a missing value."""
    return "" if math.isnan(value) else repr(float(value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m features.elements", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"regenerate {TABLE_PATH.name} from {LIBRARY}")
    args = parser.parse_args(argv)
    if args.write:
        write_table()
        table = load_element_table()
        print(f"wrote {TABLE_PATH} ({len(table.symbols)} elements, {int(table.complete.sum())} with every property)")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
