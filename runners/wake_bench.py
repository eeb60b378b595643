"""Benchmark (not a test): what one runner call costs when the process has just slept.

The runner worker sleeps between calls (at 16 connections it was busy ~36 % of the time) and each
API worker sleeps while all its requests wait on the runner or the client; the in-process server's
workers never sleep under that load. On this project's machine (a 2-vCPU KVM guest) a process that
slept ~1 ms runs its next call markedly slower: caches and predictors were taken by other work
meanwhile. This prints the same call (``RunnerCore.answer`` on material rows, as the socket hop
sends them) back to back, after sleeps and after other Python work, so the cost of a wake-up is a
number, not a guess (docs/performance.md, What it cannot do).

    python -m runners.wake_bench [--rows 8] [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from model_registry.datagen import sample_inputs
from monitoring.metrics import Metrics
from runners.contract import RowKind
from runners.core import RunnerCore
from settings import load_settings

_OTHER = [json.dumps({"values": list(range(200)), "text": "x" * 1000}) for _ in range(50)]


def _other_work() -> None:
    """~1 ms of unrelated Python (JSON parsing), as an API worker's request would be."""
    for text in _OTHER:
        json.loads(text)


BEFORE: dict[str, Callable[[], None]] = {
    "back to back": lambda: None,
    "after a 0.1 ms sleep": lambda: time.sleep(0.0001),
    "after a 1 ms sleep": lambda: time.sleep(0.001),
    "after 1 ms of other work": _other_work,
}


def median_us(call: Callable[[], object], before: Callable[[], None], calls: int) -> float:
    """Median wall time of ``call``, each time right after ``before``."""
    times = []
    for _ in range(calls):
        before()
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8, help="material rows a call (a runner batch)")
    parser.add_argument("--calls", type=int, default=300, help="calls measured per case")
    args = parser.parse_args()
    core = RunnerCore("mechanical", None, load_settings().models.cache_max_mb, Metrics())
    core.warm_up()
    rows, kind = sample_inputs(np.random.default_rng(0), args.rows).to_rows(), RowKind(materials=True)

    def call() -> np.ndarray:
        return core.answer(rows, kind)

    call()
    baseline = None
    for name, before in BEFORE.items():
        us = median_us(call, before, args.calls)
        baseline = baseline or us
        print(f"mechanical, {args.rows} material rows, {name:26s} {us:7.0f} us  ({us / baseline:.2f}x)")


if __name__ == "__main__":
    main()
