"""Sweep every input across the range the API accepts and check the answers against physics.

    python -m model_registry.sweep [--json out.json]

For five reference materials (alumina, SiC, B4C, a SiC-B4C mix, an alumina-zirconia mix) and
both families, each numeric input is swept over its accepted range (41 points, log-spaced for
inputs spanning decades) with every other input at its documented default. For every target
with a physical trend in that input (``features.targets``) it counts

  * sign violations: a step where the prediction moves against the trend;
  * flat segments: three or more consecutive steps where the prediction does not move at all
    (what a tree model does beyond its data while the physics keeps changing).

The physics-exact check: density against rho_th (1 - P) for every phase alone, the reference
mixes and 200 random mixtures (volume and weight basis) at porosity 0 to 0.3: the largest
relative error and the share of physical values inside the 95 % interval.
Exit status 1 when any check fails, so ``make science`` fails with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import numpy as np

from features.batch import MaterialBatch
from features.catalogue import family_numeric_inputs, numeric_input, numeric_inputs
from features.featurizer import FAMILIES, Featurizer, mixture_properties
from features.phases import PHASES
from features.schema import Material
from features.targets import BASELINES

REFERENCE_MATERIALS = {
    "alumina": ({"Al2O3": 1.0}, 1600.0),
    "SiC": ({"SiC": 1.0}, 2100.0),
    "B4C": ({"B4C": 1.0}, 2100.0),
    "SiC-B4C 50/50": ({"SiC": 0.5, "B4C": 0.5}, 2100.0),
    "alumina-zirconia 80/20": ({"Al2O3": 0.8, "ZrO2": 0.2}, 1550.0),
}
POINTS = 41
RELATIVE_TOLERANCE = 1e-9


@dataclass
class Finding:
    family: str
    material: str
    input: str
    target: str
    kind: str  # "sign" or "flat"
    detail: str


def grid(name: str, points: int = POINTS) -> np.ndarray:
    spec = numeric_input(name)
    space = np.geomspace if spec.log_scaled else np.linspace
    return space(spec.low, spec.high, points)


def materials_along(composition: dict, temperature: float, name: str, values: np.ndarray) -> list[Material]:
    base = {"composition": composition, "processing": {"sintering_temperature": temperature}}
    block = numeric_input(name).block
    out = []
    for value in values:
        body = json.loads(json.dumps(base))
        body.setdefault(block, {})[name] = float(value)
        out.append(Material.model_validate(body))
    return out


def check_curve(values: np.ndarray, trend: int) -> tuple[int, int]:
    """(sign violations, flat segments) of one swept prediction."""
    step = np.diff(values)
    scale = np.maximum(np.abs(values[:-1]), 1e-300)
    against = int(np.sum(trend * step < -RELATIVE_TOLERANCE * scale))
    still = np.abs(step) <= RELATIVE_TOLERANCE * scale
    flats, run = 0, 0
    for s in np.append(still, False):
        if s:
            run += 1
        else:
            flats += run >= 3
            run = 0
    return against, flats


def sweep_family(model, family: str) -> tuple[list[Finding], int]:
    featurizer, findings, checked = Featurizer(family), [], 0
    inputs = [i.name for i in family_numeric_inputs(family)]
    for label, (composition, temperature) in REFERENCE_MATERIALS.items():
        for name in inputs:
            values = grid(name)
            batch = MaterialBatch.from_materials(materials_along(composition, temperature, name, values))
            pred = model.predict(featurizer.transform(batch)).values
            for o, target in enumerate(model.targets):
                trend = BASELINES[target].trends.get(name, 0)
                if trend == 0:
                    continue
                checked += 1
                against, flats = check_curve(pred[:, o], trend)
                if against:
                    detail = f"{against} step(s) against the trend"
                    findings.append(Finding(family, label, name, target, "sign", detail))
                if flats:
                    findings.append(Finding(family, label, name, target, "flat", f"{flats} flat segment(s)"))
    return findings, checked


def density_compositions(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows of phase fractions and a weight-basis flag: single phases, the reference mixes, random mixes."""
    rows = [np.eye(len(PHASES))[i] for i in range(len(PHASES))]
    for composition, _ in REFERENCE_MATERIALS.values():
        rows.append(np.array([composition.get(p, 0.0) for p in PHASES]))
    random = rng.dirichlet(np.full(len(PHASES), 0.5), 200)
    fractions = np.vstack([np.array(rows), random, random])
    weight = np.r_[np.zeros(len(rows) + 200, bool), np.ones(200, bool)]
    return fractions, weight


def density_check(model, rng: np.random.Generator) -> dict:
    fractions, weight = density_compositions(rng)
    porosity = np.linspace(0.0, 0.3, 13)
    n = len(fractions) * len(porosity)
    columns = {
        "fractions": np.repeat(fractions, len(porosity), axis=0),
        "weight_basis": np.repeat(weight, len(porosity)),
        "porosity": np.tile(porosity, len(fractions)),
        **{i.name: np.full(n, _default(i)) for i in numeric_inputs() if i.name != "porosity"},
        **{
            name: np.zeros(n, int)
            for name in ("atmosphere", "phase_distribution", "interface_quality", "backing", "threat")
        },
    }
    batch = MaterialBatch.from_columns(columns)
    pred = model.predict(Featurizer("mechanical").transform(batch))
    o = model.targets.index("density")
    physical = mixture_properties(batch)["theoretical_density"] * (1 - batch.porosity)
    error = np.abs(pred.values[:, o] / physical - 1)
    inside = (pred.lower[:, o] <= physical) & (physical <= pred.upper[:, o])
    return {
        "rows": int(n),
        "max_relative_error": float(error.max()),
        "median_relative_error": float(np.median(error)),
        "inside_interval": float(inside.mean()),
    }


def _default(spec) -> float:
    """The documented default; sintering temperature has none (required), 1800 degC is used."""
    return 1800.0 if spec.default is None else float(spec.default)


def run(models: dict) -> dict:
    families: dict[str, dict] = {}
    all_findings: list[dict] = []
    for family in FAMILIES:
        findings, checked = sweep_family(models[family], family)
        families[family] = {
            "curves_checked": checked,
            "sign_violations": sum(f.kind == "sign" for f in findings),
            "flat_segments": sum(f.kind == "flat" for f in findings),
        }
        all_findings += [f.__dict__ for f in findings]
    return {
        "families": families,
        "findings": all_findings,
        "density": density_check(models["mechanical"], np.random.default_rng(0)),
    }


def failed(report: dict) -> bool:
    density = report["density"]
    return bool(report["findings"]) or density["max_relative_error"] > 0.01 or density["inside_interval"] < 1.0


def print_report(report: dict) -> None:
    for family, summary in report["families"].items():
        print(
            f"{family:10s} curves checked {summary['curves_checked']:4d}   sign violations "
            f"{summary['sign_violations']:3d}   flat segments {summary['flat_segments']:3d}"
        )
    for f in report["findings"]:
        print(
            f"  {f['family']:10s} {f['material']:24s} {f['input']:22s} {f['target']:24s} {f['kind']:5s} {f['detail']}"
        )
    d = report["density"]
    print(
        f"density vs rho_th (1 - P): {d['rows']} rows, max error {d['max_relative_error']:.2%}, "
        f"median {d['median_relative_error']:.3%}, "
        f"physical value inside the 95 % interval {d['inside_interval']:.1%}"
    )


def main(argv: list[str] | None = None) -> int:
    from model_registry import store

    parser = argparse.ArgumentParser(
        prog="python -m model_registry.sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    models = {family: store.load(family) for family in FAMILIES}
    print("models: " + ", ".join(m.tag for m in models.values()))
    report = run(models)
    print_report(report)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    return 1 if failed(report) else 0


if __name__ == "__main__":
    sys.exit(main())
