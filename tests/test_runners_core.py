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
