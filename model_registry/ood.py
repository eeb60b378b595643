"""Out-of-distribution coverage: train on a restricted region, test outside it.

    python -m model_registry.ood [--rows N] [--json out.json]

Both families are trained (baseline, correction, conformal calibration) only on materials with
porosity below 0.08 and grain size 1-20 um, and tested on every material outside that region
(up to porosity 0.3 and grain sizes 0.1-100 um), where the answer extrapolates. The 95 %
intervals widen with the distance outside the training range (``model_registry.model``); this
measures whether they still cover. Exit status 1 when any target's outside coverage is below 0.90.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from features.catalogue import TARGETS
from features.featurizer import FAMILIES, Featurizer
from model_registry.datagen import generate
from model_registry.train import TrainingConfig, evaluate, train_family

REGION = {"porosity": (0.0, 0.08), "grain_size": (1.0, 20.0)}
REQUIRED_COVERAGE = 0.90
_KEYS = {"test_samples": "rows"}


def inside_region(batch) -> np.ndarray:
    mask = np.ones(len(batch), dtype=bool)
    for name, (low, high) in REGION.items():
        values = getattr(batch, name)
        mask &= (values >= low) & (values < high)
    return mask


def region_split(inside: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """60/20/20 training/calibration/test inside the region; every row outside is the OOD test."""
    rows = np.random.default_rng(seed).permutation(np.flatnonzero(inside))
    n_test = n_cal = len(rows) // 5
    return rows[n_test + n_cal :], rows[n_test : n_test + n_cal], rows[:n_test], np.flatnonzero(~inside)


def run(rows: int, config: TrainingConfig) -> dict:
    batch, targets = generate(rows)
    train, cal, test_in, test_out = region_split(inside_region(batch), config.seed)
    report = {}
    for family in FAMILIES:
        trained = train_family(batch, targets, family, config, progress=lambda m: None, split=(train, cal, test_in))
        X = Featurizer(family).transform(batch.take(test_out))
        Y = np.column_stack([targets[t][test_out] for t in TARGETS[family]])
        outside = evaluate(trained.model, X, Y)
        report[family] = {
            t: {
                "inside_coverage_95": trained.metrics[t]["coverage_95"],
                "inside_rows": trained.metrics[t]["test_samples"],
                **{f"outside_{_KEYS.get(k, k)}": v for k, v in outside[t].items()},
            }
            for t in TARGETS[family]
        }
    return report


def print_report(report: dict) -> None:
    print(f"trained on {REGION}; tested inside (held out) and outside")
    print(f"  {'target':24s} {'cov in':>7s} {'cov out':>8s} {'rows out':>8s} {'med rel err out':>16s}")
    for family in report.values():
        for target, m in family.items():
            print(
                f"  {target:24s} {m['inside_coverage_95']:7.3f} {m['outside_coverage_95']:8.3f} "
                f"{m['outside_rows']:8d} {m['outside_median_relative_error']:16.2%}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_registry.ood", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=16000)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    report = run(args.rows, TrainingConfig(importance_repeats=0))
    print_report(report)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    worst = min(m["outside_coverage_95"] for family in report.values() for m in family.values())
    return 0 if worst >= REQUIRED_COVERAGE else 1


if __name__ == "__main__":
    sys.exit(main())
