"""Benchmark (not a test): predict time of the stored models for 1 and 256 rows.

One call per family returns every target, its 95 % interval and, optionally, the per-feature
contributions.

    python -m model_registry.bench
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np

from features.featurizer import FAMILIES, Featurizer
from model_registry import store
from model_registry.datagen import sample_inputs


def time_call_ms(fn, repeats: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats * 1e3


def main() -> None:
    batch = sample_inputs(np.random.default_rng(0), 256)
    for family in FAMILIES:
        model = store.load(family)
        X = Featurizer(family).transform(batch)
        for rows in (1, 256):
            rows_x, repeats = X[:rows], max(10, 2000 // rows)
            plain = time_call_ms(partial(model.predict, rows_x), repeats)
            explained = time_call_ms(partial(model.predict, rows_x, contributions=True), repeats)
            print(
                f"{model.tag:38s} {rows:4d} rows: {plain:7.3f} ms/call ({plain / rows * 1e3:7.1f} us/row); "
                f"with contributions {explained:7.3f} ms/call"
            )
        print(
            f"{'':38s} model arrays: {model.memory_bytes / 1e6:.1f} MB, {len(model.forest.roots)} trees, "
            f"depth {model.forest.depth}"
        )


if __name__ == "__main__":
    main()
