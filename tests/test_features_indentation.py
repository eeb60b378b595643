import numpy as np
import pytest

from features.indentation import SizeEffectLaw, log_psr_slope, psr_factor


def test_psr_factor_is_li_and_bradt_solved_for_the_hardness():
    # P = a1 d + a2 d^2, H = 1.8544 P / d^2, H0 = 1.8544 a2, P* = a1^2 / a2
    a1, a2 = 0.04, 2.0
    d = np.array([0.005, 0.02, 0.1, 1.0])
    load = a1 * d + a2 * d**2
    assert np.allclose(psr_factor(load, a1**2 / a2), (load / d**2) / a2)


def test_the_size_effect_fades_towards_a_load_independent_hardness():
    loads = np.logspace(-2, 3, 200)
    g = psr_factor(loads, 0.1)
    assert np.all(np.diff(g) < 0) and np.all(g > 1)
    assert g[-1] == pytest.approx(1.0, abs=0.02)
    decade_drops = g[:-40] / g[40:]  # 40 steps = one decade
    assert np.all(np.diff(decade_drops) < 0)  # each decade of load costs less than the one before


def test_the_slope_is_the_derivative_of_the_log_factor():
    loads, p_star = np.array([0.05, 0.5, 5.0, 50.0]), 0.2
    h = 1e-6
    numeric = (np.log(psr_factor(loads * np.exp(h), p_star)) - np.log(psr_factor(loads * np.exp(-h), p_star))) / (2 * h)
    assert np.allclose(log_psr_slope(loads, p_star), numeric, atol=1e-6)
    assert np.all((-1 < log_psr_slope(loads, p_star)) & (log_psr_slope(loads, p_star) < 0))


def law(**overrides):
    values = dict(
        load_column=0,
        class_column=1,
        log_p_star_intercept=np.log(0.1),
        log_p_star_slope=0.3,
        min_load_n=0.25,
        reference_load_n=1.4,
        sigma_log_p_star=0.5,
    )
    return SizeEffectLaw(**(values | overrides))


def test_below_its_data_the_law_is_held_and_the_class_column_sets_p_star():
    X = np.array([[0.01, 0.0], [0.25, 0.0], [1.0, 0.0], [1.0, 4.0]])
    f = law().log_factor(X)
    assert f[0] == f[1] > f[2]
    assert f[3] > f[2]  # a larger P* (d-electron rich): a stronger size effect at the same load


def test_the_plateau_factor_is_the_factor_held_below_its_data():
    X = np.array([[0.001, 0.0], [0.1, 0.0], [0.001, 4.0]])
    assert np.allclose(law().plateau_factor(X[:, 1]), np.exp(law().log_factor(X)))


def test_the_interval_term_vanishes_at_the_reference_load_and_grows_away_from_it():
    X = np.array([[1.4, 0.0], [5.0, 0.0], [50.0, 0.0], [0.3, 0.0]])
    w = law().half_width(X)
    assert w[0] == pytest.approx(0.0, abs=1e-12)
    assert 0 < w[1] < w[2] and w[3] > 0
    assert np.all(law(sigma_log_p_star=0.0).half_width(X) == 0)
