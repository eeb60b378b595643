"""The two hardness routes give one answer for a dense catalogue phase (model_registry/routes.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_registry import routes, store


@pytest.fixture(scope="module")
def models(trained, hardness_tag):
    return trained["mechanical"].model, store.load("hardness", hardness_tag)


def test_at_hv1_both_routes_agree_and_reach_the_published_range(models):
    # the small test models; `make science` prints the full models' values against the ranges
    rows = routes.compare(*models)
    assert [r.phase for r in rows] == list(routes.CATALOGUE)
    for r in rows:
        assert r.agree, r
        for low, _, high in (r.mechanical, r.formula):
            assert low <= r.published[1] and r.published[0] <= high, r


@settings(max_examples=40, deadline=None)
@given(grain_size=st.floats(1.0, 20.0), load=st.floats(1.0, 50.0))
def test_the_routes_agree_across_grain_size_and_load(models, grain_size, load):
    for r in routes.compare(*models, grain_size_um=grain_size, load_n=load):
        assert r.agree, r


def test_no_covalent_ceramic_loses_60_percent_across_a_decade_of_load(models):
    _, hardness = models
    for phase in routes.CATALOGUE:
        low, high = routes.formula_hardness(hardness, (phase, phase), np.array([0.98, 9.8]))[:, 0]
        assert high > 0.6 * low, phase


def test_load_curves_are_written(models, tmp_path):
    path = tmp_path / "curves.png"
    routes.plot_load_curves(models[1], path)
    assert path.stat().st_size > 10_000
