"""Benchmark (not a test): microseconds per material for the featurizer, 1 and 10,000 materials.

python -m features.bench
"""

from __future__ import annotations

import time

import numpy as np

from features.batch import MaterialBatch
from features.catalogue import FAMILIES, categorical_inputs, numeric_inputs
from features.featurizer import Featurizer
from features.phases import PHASES


def random_batch(rng: np.random.Generator, n: int) -> MaterialBatch:
    """Materials drawn uniformly over the accepted ranges (the featurizer's cost does not depend
    on how realistic they are)."""
    columns = {
        "fractions": rng.dirichlet(np.ones(len(PHASES)), n),
        **{i.name: rng.uniform(i.low, i.high, n) for i in numeric_inputs()},
        **{i.name: rng.integers(0, len(i.levels), n) for i in categorical_inputs()},
    }
    return MaterialBatch.from_columns(columns)


def time_per_material_us(featurizer: Featurizer, batch: MaterialBatch, repeats: int) -> float:
    featurizer.transform(batch)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        featurizer.transform(batch)
    return (time.perf_counter() - started) / repeats / len(batch) * 1e6


def main() -> None:
    batch = random_batch(np.random.default_rng(0), 10_000)
    for family in FAMILIES:
        featurizer = Featurizer(family)
        one = time_per_material_us(featurizer, batch.take(np.arange(1)), repeats=2000)
        many = time_per_material_us(featurizer, batch, repeats=10)
        print(f"{family:10s} 1 material: {one:8.1f} us/material   10,000 materials: {many:6.2f} us/material")


if __name__ == "__main__":
    main()
