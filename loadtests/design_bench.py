"""The design search against random search at equal evaluations (issue 30). Prints numbers; not a test.

    python -m loadtests.design_bench [--evaluations 2000] [--seeds 5] [--json docs/design-bench.json]

Three stated problems (``PROBLEMS``), each searched by POST /api/v1/design's path in-process (the
store's default models, runners in the same process, no HTTP) with ``strategy: "optimize"``
(optuna's NSGA-II) and ``strategy: "random"`` (optuna's random sampler over the same space, the
same blocks, the same evaluation path), for seeds 1..``--seeds``. Per problem and strategy: the
median hypervolume (every run's front measured against one reference point per problem: the worst
value any run's front reached, plus a tenth of the span, so the runs are compared on one scale),
the median evaluations per second (the whole search: sampler, validation, features, model,
answers) and the median time and evaluations to the first feasible candidate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from typing import Any

import numpy as np
import orjson

from api.design.routes import start
from design.pareto import REFERENCE_MARGIN, hypervolume
from design.spec import EXAMPLE
from loadtests.batch_bench import in_process_core

ARMOR = {"tile_thickness": 10, "backing": "aluminum_6061_t6", "backing_thickness": 6, "threat": "7.62x51_m80"}
PROBLEMS: dict[str, dict[str, Any]] = {
    # the example: a light tile with the best conservative V50 at 10 mm on 6 mm aluminium
    "light-tile": {k: v for k, v in EXAMPLE.items() if k not in ("max_evaluations", "seed")},
    # mechanical only: hard and tough, strong enough, sintered below 2,000 degC
    "hard-and-tough": {
        "fixed": {"processing": {"atmosphere": "argon"}},
        "free": {
            "composition": ["SiC", "B4C", "Al2O3", "TiB2", "ZrO2"],
            "processing.sintering_temperature": [1500, 2000],
            "processing.pressure": [10, 100],
            "processing.grain_size": [0.5, 20],
            "microstructure.porosity": [0.0, 0.1],
        },
        "constraints": ["flexural_strength_low >= 300"],
        "objectives": [
            {"target": "vickers_hardness", "goal": "maximize"},
            {"target": "fracture_toughness", "goal": "maximize"},
        ],
    },
    # three objectives: stop M80 at the interval's conservative end with the thinnest, lightest,
    # least-deforming build, tile thickness free
    "stop-m80": {
        "fixed": {"armor": {k: v for k, v in ARMOR.items() if k != "tile_thickness"}},
        "free": {
            "composition": ["SiC", "B4C", "Al2O3", "WC"],
            "armor.tile_thickness": [6, 30],
            "processing.sintering_temperature": [1700, 2200],
            "microstructure.porosity": [0.0, 0.08],
        },
        "constraints": ["v50_velocity_low >= 847"],
        "objectives": [
            {"target": "density", "goal": "minimize"},
            {"target": "back_face_deformation", "goal": "minimize"},
            {"target": "multi_hit_capability", "goal": "maximize"},
        ],
    },
}
STRATEGIES = ("optimize", "random")


async def _search(core: Any, spec: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    async for event in await start(core, orjson.dumps(spec)):
        answer = event
    return answer


def _losses(answer: dict[str, Any], objectives: list[dict[str, Any]]) -> np.ndarray:
    sign = [-1.0 if o["goal"] == "maximize" else 1.0 for o in objectives]
    rows = [
        [s * entry["objectives"][o["target"]] for s, o in zip(sign, objectives, strict=True)]
        for entry in answer["front"]
    ]
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(objectives))


def _common_reference(fronts: list[np.ndarray]) -> np.ndarray:
    points = np.vstack(fronts)
    worst, best = points.max(axis=0), points.min(axis=0)
    return worst + REFERENCE_MARGIN * np.where(worst > best, worst - best, 1e-9)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def bench_problem(core: Any, name: str, evaluations: int, seeds: int) -> dict[str, Any]:
    problem = PROBLEMS[name]
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in STRATEGIES}
    for strategy in STRATEGIES:
        for seed in range(1, seeds + 1):
            spec = {**problem, "max_evaluations": evaluations, "seed": seed, "strategy": strategy}
            runs[strategy].append(asyncio.run(_search(core, spec)))
    fronts = {s: [_losses(a, problem["objectives"]) for a in runs[s]] for s in STRATEGIES}
    reference = _common_reference([f for s in STRATEGIES for f in fronts[s] if len(f)])
    signs = [-1.0 if o["goal"] == "maximize" else 1.0 for o in problem["objectives"]]
    named = {o["target"]: s * r for o, s, r in zip(problem["objectives"], signs, reference.tolist(), strict=True)}
    out: dict[str, Any] = {"reference": named}
    for strategy in STRATEGIES:
        summaries = [a["summary"] for a in runs[strategy]]
        volumes = [hypervolume(f, reference) if len(f) else 0.0 for f in fronts[strategy]]
        out[strategy] = {
            "hypervolumes": volumes,
            "median_hypervolume": statistics.median(volumes),
            "median_evaluations_per_s": statistics.median(s["evaluations_per_s"] for s in summaries),
            "median_feasible_share": statistics.median(s["feasible_share"] for s in summaries),
            "median_front": statistics.median(s["front"] for s in summaries),
            "median_first_feasible_s": _median([s["first_feasible_s"] for s in summaries]),
            "median_first_feasible_evaluation": _median([s["first_feasible_evaluation"] for s in summaries]),
        }
    return out


def _table(results: dict[str, dict[str, Any]], evaluations: int, seeds: int) -> str:
    lines = [
        f"{evaluations} evaluations a run, seeds 1-{seeds}; medians over the seeds",
        "",
        "| problem | strategy | hypervolume | optimiser / random | evaluations/s | feasible share | front "
        "| first feasible (evaluation, ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        random_volume = result["random"]["median_hypervolume"]
        for strategy in STRATEGIES:
            r = result[strategy]
            ratio = r["median_hypervolume"] / random_volume if random_volume else float("nan")
            first_s = r["median_first_feasible_s"]
            first = "none" if first_s is None else f"{r['median_first_feasible_evaluation']:g}, {first_s * 1e3:.0f}"
            figures = [f"{r['median_hypervolume']:.6g}", f"{ratio:.3f}", f"{r['median_evaluations_per_s']:.0f}"]
            figures += [f"{r['median_feasible_share']:.2f}", f"{r['median_front']:g}", first]
            lines.append(f"| {name} | {strategy} | " + " | ".join(figures) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    core, _ = in_process_core()
    results = {name: bench_problem(core, name, args.evaluations, args.seeds) for name in args.problems}
    print(_table(results, args.evaluations, args.seeds))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"evaluations": args.evaluations, "seeds": args.seeds, "problems": results}, handle, indent=2)


if __name__ == "__main__":
    main()
