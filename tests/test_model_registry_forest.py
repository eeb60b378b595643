import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor

from model_registry.forest import CompiledForest


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    ys = [X[:, 0] * 2 + rng.normal(0, 0.1, 400), np.sin(X[:, 1]) + X[:, 2] ** 2]
    forests = [ExtraTreesRegressor(n_estimators=7, max_depth=8, random_state=0).fit(X, y) for y in ys]
    compiled = CompiledForest.from_trees([[e.tree_ for e in f.estimators_] for f in forests])
    return X, forests, compiled


def test_compiled_mean_equals_sklearn(fitted):
    X, forests, compiled = fitted
    pred = compiled.predict(X[:50])
    for o, forest in enumerate(forests):
        np.testing.assert_allclose(pred.mean[:, o], forest.predict(X[:50]))


def test_spread_is_std_across_trees(fitted):
    X, forests, compiled = fitted
    per_tree = np.stack([e.predict(X[:20]) for e in forests[1].estimators_], axis=1)
    np.testing.assert_allclose(compiled.predict(X[:20]).spread[:, 1], per_tree.std(axis=1))


def test_contributions_sum_with_base_to_prediction(fitted):
    X, _, compiled = fitted
    pred = compiled.predict(X[:30], contributions=True)
    np.testing.assert_allclose(pred.base + pred.contributions.sum(axis=1), pred.mean)
    # the first output depends on feature 0 only: it carries most of the contribution
    assert np.abs(pred.contributions[:, 0, 0]).sum() > 5 * np.abs(pred.contributions[:, 3, 0]).sum()


def test_one_row_walks_as_many(fitted):
    """One row takes its own path through the walk (no row offsets): same answer as in a batch."""
    X, forests, compiled = fitted
    for i in (0, 7, 49):
        one = compiled.predict(X[i : i + 1], contributions=True)
        many = compiled.predict(X[:50], contributions=True)
        np.testing.assert_array_equal(one.mean[0], many.mean[i])
        np.testing.assert_allclose(one.contributions[0], many.contributions[i], atol=1e-12)
        for o, forest in enumerate(forests):
            np.testing.assert_allclose(one.mean[0, o], forest.predict(X[i : i + 1])[0])


def test_saved_arrays_load_to_the_same_forest(fitted):
    """``arrays`` keeps the saved layout (int32 node indices), whatever the walk holds in memory."""
    X, _, compiled = fitted
    saved = compiled.arrays()
    assert {saved[name].dtype for name in ("left", "right", "feature")} == {np.dtype(np.int32)}
    loaded = CompiledForest(**saved)
    np.testing.assert_array_equal(loaded.predict(X[:20]).mean, compiled.predict(X[:20]).mean)
    assert loaded.depth == compiled.depth
