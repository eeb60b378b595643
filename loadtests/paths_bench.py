"""What each way into the service costs: ``/api/v1/predict/mechanical`` (the fast path, issue 12) and
BentoML's typed endpoint ``/predict_mechanical`` (issue 36: BentoML's clients and tools), measured
side by side on one ``bentoml serve`` with wrk, a new material per request.

    python -m loadtests.paths_bench [--duration 8] [--rounds 3] [--json docs/paths-bench.json]

Both paths run the same prediction flow; the typed endpoint adds BentoML's router, its request
context and middleware, its validation of the body into the pydantic model (and of the answer back
into it) and its JSON rendering. The paths alternate within each round, so each ratio compares
figures measured seconds apart on this shared, noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import asdict
from pathlib import Path

from loadtests.side_by_side import OFFSET_STEP, Cell, serving, warmed_up, wrk

PATHS = {"/api/v1": "/api/v1/predict/mechanical", "bentoml api": "/predict_mechanical"}
CELLS = (("new material, 1 connection", 1), ("new material, 16 connections", 16))


def measure(duration_s: int, rounds: int) -> dict[str, dict[str, list[Cell]]]:
    """Cell name -> path name -> one Cell a round."""
    results: dict[str, dict[str, list[Cell]]] = {cell: {path: [] for path in PATHS} for cell, _ in CELLS}
    offset = 7_000_000  # away from side_by_side's materials
    with serving("service", dict(os.environ)) as (port, root):
        warmed_up(port, root)
        for round_index in range(rounds):
            order = list(PATHS.items()) if round_index % 2 == 0 else list(reversed(PATHS.items()))
            for cell, connections in CELLS:
                for name, route in order:
                    offset += OFFSET_STEP
                    results[cell][name].append(
                        wrk(port, "wrk_new_material.lua", connections, duration_s, offset, route)
                    )
    return results


def report(results: dict[str, dict[str, list[Cell]]]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for cell, by_path in results.items():
        fast, typed = by_path["/api/v1"], by_path["bentoml api"]
        ratios = [t.requests_per_s / f.requests_per_s for f, t in zip(fast, typed, strict=True)]
        summary[cell] = {
            "api_v1_req_s": max(c.requests_per_s for c in fast),
            "api_v1_p50_ms": min(c.p50_ms for c in fast),
            "bentoml_api_req_s": max(c.requests_per_s for c in typed),
            "bentoml_api_p50_ms": min(c.p50_ms for c in typed),
            "median_ratio_bentoml_to_api_v1": statistics.median(ratios),
            "errors": sum(c.errors for c in fast + typed),
        }
        row = summary[cell]
        print(
            f"{cell:30s} /api/v1 {row['api_v1_req_s']:7.0f} req/s p50 {row['api_v1_p50_ms']:6.2f} ms"
            f" | bentoml api {row['bentoml_api_req_s']:7.0f} req/s p50 {row['bentoml_api_p50_ms']:6.2f} ms"
            f" | ratio (median of rounds) {row['median_ratio_bentoml_to_api_v1']:.2f} | errors {row['errors']}"
        )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = measure(args.duration, args.rounds)
    summary = report(results)
    if args.json:
        raw = {cell: {path: [asdict(c) for c in cells] for path, cells in by.items()} for cell, by in results.items()}
        args.json.write_text(json.dumps({"summary": summary, "rounds": raw}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
