import numpy as np

from model_registry.datagen import TARGETS, generate


def test_same_seed_same_table_and_other_seed_differs():
    a_batch, a = generate(200, seed=3)
    _, b = generate(200, seed=3)
    _, c = generate(200, seed=4)
    for t in a:
        np.testing.assert_array_equal(a[t], b[t])
    assert not np.array_equal(a["density"], c["density"])
    assert len(a_batch) == 200


def test_targets_present_and_within_physical_ranges():
    batch, targets = generate(2000, seed=1)
    assert set(targets) == {t for family in TARGETS.values() for t in family}
    assert np.all((targets["multi_hit_capability"] >= 0) & (targets["multi_hit_capability"] <= 1))
    assert np.all((targets["poisson_ratio"] > 0) & (targets["poisson_ratio"] < 0.5))
    lightest = 2.52 * (1 - 0.3) * 0.98  # B4C at the largest accepted porosity, less the noise
    assert np.all(targets["density"] < 15.7) and np.all(targets["density"] > lightest)
    assert np.all((batch.porosity >= 0) & (batch.porosity <= 0.3))
    np.testing.assert_allclose(batch.volume_fractions.sum(axis=1), 1.0)
