"""Benchmark (not a test): microseconds per material for the featurizer, 1 and 10,000 materials.

    python -m features.bench
"""

from __future__ import annotations

import time

import numpy as np

from features.featurizer import FAMILIES, Featurizer
from model_registry.datagen import sample_inputs


def time_per_material_us(featurizer: Featurizer, batch, repeats: int) -> float:
    featurizer.transform(batch)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        featurizer.transform(batch)
    return (time.perf_counter() - started) / repeats / len(batch) * 1e6


def main() -> None:
    batch = sample_inputs(np.random.default_rng(0), 10_000)
    for family in FAMILIES:
        featurizer = Featurizer(family)
        one = time_per_material_us(featurizer, batch.take(np.arange(1)), repeats=2000)
        many = time_per_material_us(featurizer, batch, repeats=10)
        print(f"{family:10s} 1 material: {one:8.1f} us/material   10,000 materials: {many:6.2f} us/material")


if __name__ == "__main__":
    main()
