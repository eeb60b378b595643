"""runners/core.py: rows through the model and the prediction cache, packed for the API."""

import numpy as np

from monitoring.instrumented import instrumented_local
from monitoring.metrics import Metrics
from runners.core import RunnerCore
from settings import CacheLayerSettings


def test_batch_features_equal_single(runner_cores):
    core = runner_cores["mechanical"]
    rows = np.random.default_rng(0).random((5, core.n_features))
    together = core.predict(rows)
    apart = np.vstack([core.predict(rows[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(together, apart)


def cached_core(stored_tags):
    """A mechanical runner core with a 100-entry prediction cache, and that cache."""
    metrics = Metrics()
    cache = instrumented_local("prediction", CacheLayerSettings(True, 100, 60.0, 1.0), metrics)
    return RunnerCore("mechanical", stored_tags["mechanical"], 256, metrics, cache), cache


def test_runner_prediction_cache_answers_repeated_rows(stored_tags):
    core, cache = cached_core(stored_tags)
    rows = np.random.default_rng(1).random((3, core.n_features))
    first = core.predict(rows)
    again = core.predict(rows[[2, 0]])
    np.testing.assert_array_equal(again, first[[2, 0]])
    assert cache is not None and core.model_calls == 1 and cache.stats()["hits"] == 2


def test_a_call_of_cached_and_new_rows_computes_only_the_new_ones_in_order(stored_tags):
    core, cache = cached_core(stored_tags)
    rows = np.random.default_rng(3).random((4, core.n_features))
    expected = core.predict(rows, cache=False)
    core.predict(rows[[1, 3]])
    mixed = core.predict(rows[[3, 0, 1, 2]])
    np.testing.assert_array_equal(mixed, expected[[3, 0, 1, 2]])
    assert core.model_calls == 3 and cache is not None and cache.stats()["hits"] == 2
    mixed[0, 0] = -1.0  # the caller's array, writable and not the cache's bytes
    np.testing.assert_array_equal(core.predict(rows[[3]]), expected[[3]])


def test_rows_sent_past_the_cache_neither_read_nor_fill_it(stored_tags):
    core, cache = cached_core(stored_tags)
    rows = np.random.default_rng(2).random((3, core.n_features))
    past = core.predict(rows, cache=False)
    assert cache is not None and len(cache.cache) == 0 and core.model_calls == 1
    np.testing.assert_array_equal(core.predict(rows), past)  # the same answer through the cache
    core.predict(rows, cache=False)
    assert core.model_calls == 3 and cache.stats()["hits"] == 0


def _materials(n: int) -> list:
    """n distinct validated materials (the documented example, porosity stepped)."""
    from tests.support import example, request

    return [request(microstructure={**example()["microstructure"], "porosity": 0.01 + i / 100}) for i in range(n)]


def test_material_rows_answer_as_their_feature_rows(runner_cores):
    """The runner featurises material rows (how the API sends the default model's rows) to the
    same answer as the API's feature rows, in a batch or one by one, with contributions."""
    from features.batch import MaterialBatch
    from features.featurizer import Featurizer

    for family in ("mechanical", "ballistic"):
        core = runner_cores[family]
        batch = MaterialBatch.from_materials(_materials(5))
        features = Featurizer(family).transform(batch)
        for explain in (False, True):
            expected = core.predict(features, explain, cache=False)
            np.testing.assert_array_equal(core.predict_materials(batch.to_rows(), explain, cache=False), expected)
            one = core.predict_materials(batch.to_rows()[3:4], explain, cache=False)
            np.testing.assert_allclose(one, expected[3:4], rtol=1e-12)


def test_material_rows_of_the_wrong_width_or_family_are_refused(runner_cores):
    import pytest

    from features.batch import MaterialBatch

    rows = MaterialBatch.from_materials(_materials(2)).to_rows()
    with pytest.raises(ValueError, match="material rows"):
        runner_cores["mechanical"].predict_materials(rows[:, :-1])
    with pytest.raises(ValueError, match="feature rows, not material rows"):
        runner_cores["hardness"].predict_materials(rows)


def test_the_prediction_cache_keeps_material_and_feature_rows_apart(stored_tags):
    from features.batch import MaterialBatch

    core, cache = cached_core(stored_tags)
    rows = MaterialBatch.from_materials(_materials(3)).to_rows()
    first = core.predict_materials(rows)
    np.testing.assert_array_equal(core.predict_materials(rows[[2]]), first[[2]])
    assert cache is not None and core.model_calls == 1 and cache.stats()["hits"] == 1
    padded = np.zeros((1, core.n_features))
    padded[0, : rows.shape[1]] = rows[2]  # the same leading numbers as feature rows: another key
    core.predict(padded)
    assert core.model_calls == 2 and cache.stats()["hits"] == 1
