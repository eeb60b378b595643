import numpy as np
import pytest

from features import physics


def test_florence_v50_worked_example():
    # 10 mm tile (3.21 g/cm3) on 6 mm Al 6061-T6 against 7.62x51 M80: computed by hand in SI units.
    v50 = physics.florence_v50(
        np.array([10.0]),
        np.array([3.21]),
        np.array([6.0]),
        np.array([2.70]),
        np.array([310.0]),
        np.array([0.12]),
        np.array([9.6]),
        np.array([7.82]),
    )
    h1, a = 0.010, 0.00391 + 0.020
    area = np.pi * a**2
    f_a = 0.0096 / ((0.0096 + (h1 * 3210 + 0.006 * 2700) * area) * area)
    assert v50[0] == pytest.approx(np.sqrt(0.12 * 310e6 * 0.006 / (0.91 * 0.0096 * f_a)))
    assert 500 < v50[0] < 900


def test_thicker_tile_raises_v50():
    args = [np.array([x]) for x in (6.0, 8.0, 9.6, 7.82)]
    thin = physics.florence_v50(
        np.array([5.0]),
        np.array([3.2]),
        args[0],
        np.array([2.7]),
        np.array([310.0]),
        np.array([0.12]),
        args[2],
        args[3],
    )
    thick = physics.florence_v50(
        np.array([15.0]),
        np.array([3.2]),
        args[0],
        np.array([2.7]),
        np.array([310.0]),
        np.array([0.12]),
        args[2],
        args[3],
    )
    assert thick[0] > thin[0]


def test_porosity_factors_fall_with_porosity():
    p = np.linspace(0, 0.3, 7)
    assert np.all(np.diff(physics.pabst_gregorova_factor(p)) < 0)
    assert np.all(np.diff(physics.spriggs_factor(p, 4.0)) < 0)
    assert physics.pabst_gregorova_factor(np.array([0.0]))[0] == 1.0


def test_hall_petch_term():
    assert physics.hall_petch_term(np.array([4.0]))[0] == pytest.approx(0.5)


def test_single_phase_hs_bounds_coincide():
    v = np.array([[1.0, 0.0]])
    e_up, _ = physics.hashin_shtrikman_modulus(v, np.array([200.0, 100.0]), np.array([150.0, 50.0]), upper=True)
    e_lo, _ = physics.hashin_shtrikman_modulus(v, np.array([200.0, 100.0]), np.array([150.0, 50.0]), upper=False)
    assert e_up[0] == pytest.approx(e_lo[0]) == pytest.approx(9 * 200 * 150 / (3 * 200 + 150))
