"""Physical relations from ../shared/reference/armor-ceramics.md section 2, vectorised.

Every function takes arrays with one row per material and returns one value per row. Used by
the featurizer (as features) and by the reference-data generator (as the ground truth).
"""

from __future__ import annotations

import numpy as np

GRAIN_SIZE_REFERENCE_UM = 5.0  # grain size at which the phase table's hardness is taken to hold


def rule_of_mixtures(volume_fractions: np.ndarray, phase_values: np.ndarray) -> np.ndarray:
    """Sum_i V_i * p_i (Voigt average), e.g. theoretical density rho_th = sum V_i rho_i.

    Summed row by row, not with a matrix product: BLAS blocks a product differently for 1 and for N
    rows, and a material must get the same features (to the last bit) alone and in a batch."""
    return (volume_fractions * phase_values).sum(axis=1)


def reuss_average(volume_fractions: np.ndarray, phase_values: np.ndarray) -> np.ndarray:
    """1 / sum_i (V_i / p_i): the Reuss (iso-stress) bound."""
    return 1.0 / (volume_fractions / phase_values).sum(axis=1)


def _present_extreme(volume_fractions: np.ndarray, phase_values: np.ndarray, largest: bool) -> np.ndarray:
    fill = -np.inf if largest else np.inf
    masked = np.where(volume_fractions > 0, phase_values[None, :], fill)
    return masked.max(axis=1) if largest else masked.min(axis=1)


def hashin_shtrikman_modulus(
    volume_fractions: np.ndarray, bulk: np.ndarray, shear: np.ndarray, upper: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Young's modulus and Poisson ratio from Hashin-Shtrikman bounds on K and G (Berryman's form
    of Watt 1976 for many phases). Returns (E, nu) for the upper or the lower bound."""
    g_ext = _present_extreme(volume_fractions, shear, upper)
    k_ext = _present_extreme(volume_fractions, bulk, upper)
    z_k = 4.0 / 3.0 * g_ext
    k_hs = 1.0 / np.einsum("np,np->n", volume_fractions, 1.0 / (bulk[None, :] + z_k[:, None])) - z_k
    zeta = g_ext / 6.0 * (9.0 * k_ext + 8.0 * g_ext) / (k_ext + 2.0 * g_ext)
    g_hs = 1.0 / np.einsum("np,np->n", volume_fractions, 1.0 / (shear[None, :] + zeta[:, None])) - zeta
    youngs = 9.0 * k_hs * g_hs / (3.0 * k_hs + g_hs)
    poisson = (3.0 * k_hs - 2.0 * g_hs) / (2.0 * (3.0 * k_hs + g_hs))
    return youngs, poisson


def hall_petch_term(grain_size_um: np.ndarray) -> np.ndarray:
    """d^(-1/2) in um^(-1/2): the grain-size term of Hall-Petch (H = H0 + k d^-1/2)."""
    return 1.0 / np.sqrt(grain_size_um)


def pabst_gregorova_factor(porosity: np.ndarray) -> np.ndarray:
    """E/E0 = exp(-2P/(1-P)) (Pabst-Gregorova)."""
    return np.exp(-2.0 * porosity / (1.0 - porosity))


def spriggs_factor(porosity: np.ndarray, b: float) -> np.ndarray:
    """M/M0 = exp(-b P) (Spriggs; Ryshkewitch-Duckworth for strength)."""
    return np.exp(-b * porosity)


def homologous_temperature(sintering_c: np.ndarray, melting_c: np.ndarray) -> np.ndarray:
    """T_sinter / T_melt in kelvin."""
    return (sintering_c + 273.15) / (melting_c + 273.15)


def florence_v50(
    tile_mm: np.ndarray,
    tile_density_g_cm3: np.ndarray,
    backing_mm: np.ndarray,
    backing_density_g_cm3: np.ndarray,
    backing_strength_mpa: np.ndarray,
    backing_failure_strain: np.ndarray,
    projectile_mass_g: np.ndarray,
    projectile_caliber_mm: np.ndarray,
) -> np.ndarray:
    """Florence (1969) ballistic limit, m/s:
    V50 = sqrt(eps2 S2 h2 / (0.91 m_p f(a))), f(a) = m_p / ([m_p + (h1 rho1 + h2 rho2) pi a^2] pi a^2),
    a = a_p + 2 h1. All quantities converted to SI first."""
    h1, h2 = tile_mm * 1e-3, backing_mm * 1e-3
    rho1, rho2 = tile_density_g_cm3 * 1e3, backing_density_g_cm3 * 1e3
    m_p = projectile_mass_g * 1e-3
    area = np.pi * (projectile_caliber_mm * 0.5e-3 + 2.0 * h1) ** 2
    f_a = m_p / ((m_p + (h1 * rho1 + h2 * rho2) * area) * area)
    return np.sqrt(backing_failure_strain * backing_strength_mpa * 1e6 * h2 / (0.91 * m_p * f_a))
