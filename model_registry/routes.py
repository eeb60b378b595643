"""One material, one answer: the two routes that give a dense phase's Vickers hardness, side by side.

- ``/predict/mechanical`` (the mechanical family): phase-table HV1 x Hall-Petch x porosity, learned
  from the synthetic table; it answers at 9.8 N (HV1) for a given microstructure.
- ``/predict/hardness`` (the formula family): composition -> load-independent hardness (trees on
  the measured data, anchored on the same phase-table HV1 for the catalogue's phases) x the
  Li & Bradt size-effect law at the requested load.

Who owns what (docs/science.md section 10): the phase table's sourced HV1 of a dense polycrystal
owns a catalogue phase's level at 9.8 N for both routes; the formula family owns the load
dependence; the mechanical family owns microstructure (porosity, grain size) and mixtures.
``to_load`` carries a mechanical HV1 to another load with the formula family's law, so the two can
be compared at any load.

    python -m model_registry.routes [--json docs/science-routes.json] [--plot docs/hardness-load-curves.png]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from features.batch import MaterialBatch
from features.composition import FormulaFeaturizer
from features.featurizer import Featurizer
from features.formula import parse_formula
from features.indentation import SizeEffectLaw
from features.phases import DATA_DIR, PHASES, load_phase_table
from features.schema import Material
from model_registry.model import ArmorModel

HV1_LOAD_N = 9.8
CATALOGUE = tuple(p for p in PHASES if p != "other")
CURVE_PHASES = ("B4C", "SiC", "Al2O3", "TiB2", "Si3N4")  # the plot's five armor ceramics


@dataclass(frozen=True)
class RouteRow:
    phase: str
    load_n: float
    mechanical: tuple[float, float, float]  # value, lower, upper (GPa) carried to load_n
    formula: tuple[float, float, float]
    published: tuple[float, float]

    @property
    def agree(self) -> bool:
        """The two 95 % intervals overlap."""
        return bool(self.mechanical[1] <= self.formula[2] and self.formula[1] <= self.mechanical[2])

    def inside(self, route: tuple[float, float, float]) -> bool:
        """The route's value lies in the published range."""
        return bool(self.published[0] <= route[0] <= self.published[1])


def published_ranges() -> dict[str, tuple[float, float]]:
    raw = json.loads((DATA_DIR / "phases.json").read_text())["phases"]
    return {p: tuple(raw[p]["hardness_gpa"]["published_range_gpa"]) for p in CATALOGUE}  # type: ignore[misc]


def dense_phase(phase: str, grain_size_um: float) -> Material:
    """The phase alone, fully dense, sintered at its usual densification temperature (phase table)."""
    temperature = float(load_phase_table().densification_c[PHASES.index(phase)])
    return Material.model_validate(
        {
            "composition": {phase: 1.0},
            "processing": {"sintering_temperature": temperature, "grain_size": grain_size_um},
            "microstructure": {"porosity": 0.0},
        }
    )


def mechanical_hv1(model: ArmorModel, phases: tuple[str, ...], grain_size_um: float) -> np.ndarray:
    """(n, 3) value, lower, upper of the mechanical family's HV1 for dense single phases."""
    batch = MaterialBatch.from_materials([dense_phase(p, grain_size_um) for p in phases])
    pred = model.predict(Featurizer(model.family).transform(batch))
    o = model.targets.index("vickers_hardness")
    return np.column_stack([pred.values[:, o], pred.lower[:, o], pred.upper[:, o]])


def formula_hardness(model: ArmorModel, formulas: tuple[str, ...], loads_n: np.ndarray) -> np.ndarray:
    """(n, 3) value, lower, upper of the formula family at each (formula, load)."""
    X = FormulaFeaturizer().transform([parse_formula(f) for f in formulas], np.asarray(loads_n, dtype=np.float64))
    pred = model.predict(X)
    return np.column_stack([pred.values[:, 0], pred.lower[:, 0], pred.upper[:, 0]])


def to_load(hardness: ArmorModel, formulas: tuple[str, ...], hv1: np.ndarray, loads_n: np.ndarray) -> np.ndarray:
    """Carry HV1 values (n, k) of ``formulas`` to ``loads_n`` with the formula family's size-effect law."""
    law = SizeEffectLaw(**hardness.baseline.load_law) if hardness.baseline.load_law else None
    if law is None:
        return hv1
    featurizer = FormulaFeaturizer()
    compositions = [parse_formula(f) for f in formulas]
    at_load = law.log_factor(featurizer.transform(compositions, np.asarray(loads_n, dtype=np.float64)))
    at_hv1 = law.log_factor(featurizer.transform(compositions, np.full(len(formulas), HV1_LOAD_N)))
    return hv1 * np.exp(at_load - at_hv1)[:, None]


def compare(
    mechanical: ArmorModel, hardness: ArmorModel, grain_size_um: float = 5.0, load_n: float = HV1_LOAD_N
) -> list[RouteRow]:
    """Both routes for every catalogue phase, dense, at one grain size and load."""
    ranges = published_ranges()
    loads = np.full(len(CATALOGUE), load_n)
    mech = to_load(hardness, CATALOGUE, mechanical_hv1(mechanical, CATALOGUE, grain_size_um), loads)
    form = formula_hardness(hardness, CATALOGUE, loads)
    return [
        RouteRow(p, load_n, tuple(mech[i]), tuple(form[i]), ranges[p])  # type: ignore[arg-type]
        for i, p in enumerate(CATALOGUE)
    ]


def print_table(rows: list[RouteRow]) -> None:
    print(f"dense single phases at {rows[0].load_n:g} N: /predict/mechanical vs /predict/hardness (GPa, 95 % interval)")
    print(f"{'phase':7s} {'mechanical':>22s} {'formula':>22s} {'published':>10s}  agree  inside (mech/formula)")
    for r in rows:
        m, f = r.mechanical, r.formula
        print(
            f"{r.phase:7s} {m[0]:6.1f} [{m[1]:5.1f}, {m[2]:5.1f}]  {f[0]:6.1f} [{f[1]:5.1f}, {f[2]:5.1f}]  "
            f"{r.published[0]:4.0f}-{r.published[1]:<4.0f}  {'yes' if r.agree else 'NO':5s}  "
            f"{'yes' if r.inside(m) else 'NO'}/{'yes' if r.inside(f) else 'NO'}"
        )


def plot_load_curves(hardness: ArmorModel, path: Path, phases: tuple[str, ...] = CURVE_PHASES) -> None:
    """HV of ``phases`` from 0.1 to 100 N (value and 95 % band), log load axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = np.logspace(-1, 2, 61)
    law = hardness.baseline.load_law or {}
    fig, ax = plt.subplots(figsize=(7.0, 4.5), dpi=120)
    for phase in phases:
        out = formula_hardness(hardness, (phase,) * len(loads), loads)
        (line,) = ax.plot(loads, out[:, 0], label=phase)
        ax.fill_between(loads, out[:, 1], out[:, 2], color=line.get_color(), alpha=0.15)
    if law:
        ax.axvspan(0.1, law["min_load_n"], color="grey", alpha=0.12, lw=0)
        ax.text(0.105, ax.get_ylim()[1] * 0.97, "law held below\nits data", va="top", fontsize=7, color="dimgrey")
    ax.axvline(HV1_LOAD_N, color="k", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("indentation load (N)")
    ax.set_ylabel("Vickers hardness (GPa)")
    ax.set_title("/predict/hardness: Li & Bradt size effect, 95 % interval", fontsize=10)
    ax.legend(fontsize=8, ncol=5, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from model_registry import store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--plot", help="write the load curves (PNG) here")
    args = parser.parse_args(argv)
    mechanical, hardness = store.load("mechanical"), store.load("hardness")
    rows = compare(mechanical, hardness)
    print_table(rows)
    print(f"models: {mechanical.tag}, {hardness.tag}")
    if args.json:
        payload = [
            asdict(r)
            | {
                "agree": bool(r.agree),
                "inside": {"mechanical": bool(r.inside(r.mechanical)), "formula": bool(r.inside(r.formula))},
            }
            for r in rows
        ]
        Path(args.json).write_text(json.dumps({"models": [mechanical.tag, hardness.tag], "rows": payload}, indent=1))
    if args.plot:
        plot_load_curves(hardness, Path(args.plot))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
