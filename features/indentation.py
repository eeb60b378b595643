"""The indentation size effect: how a Vickers hardness depends on the load it was measured at.

Li & Bradt's proportional specimen resistance (PSR; H. Li, R. C. Bradt, J. Mater. Sci. 28 (1993)
917-926): the load P needed to make an indent of diagonal d is P = a1 d + a2 d^2. The a2 d^2 term
is the load-independent hardness, H0 = 1.8544 a2 (Vickers geometry); a1 d is the specimen's extra
resistance near the surface, which matters for small indents only. Solving for d and writing
H = 1.8544 P / d^2 gives, with the characteristic load P* = a1^2 / a2 and u = P / P*,

    H / H0 = g(u) = (1 + sqrt(1 + 4 u))^2 / (4 u)

g falls monotonically from ~1/u at small loads to 1 + 1/sqrt(u) + ... and then 1 as the load grows:
the size effect fades towards a load-independent hardness, which a power law H = a P^n never does.

``SizeEffectLaw``: P* may depend on one composition column (ln P* = c0 + c1 x, c1 >= 0), because
in the measured data the metallic, d-electron-rich borides show a strong size effect and the
covalent compounds a weak one (docs/science.md section 10). Below ``min_load_n`` (the lowest load
at which a compound of the data was measured at two or more loads) the law is not extrapolated:
the factor is held at its value there, where 1/u would grow without bound.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

VICKERS_GEOMETRY = 1.8544  # H = 1.8544 P / d^2 for the 136 degree pyramid


def psr_factor(load_n: np.ndarray, p_star_n: np.ndarray) -> np.ndarray:
    """H / H0 = (1 + sqrt(1 + 4u))^2 / (4u), u = P / P* (>= 1, falls to 1 as the load grows)."""
    u = np.asarray(load_n, dtype=np.float64) / np.asarray(p_star_n, dtype=np.float64)
    return (1.0 + np.sqrt(1.0 + 4.0 * u)) ** 2 / (4.0 * u)


def log_psr_slope(load_n: np.ndarray, p_star_n: np.ndarray) -> np.ndarray:
    """d ln g / d ln u (<= 0): the local power-law exponent of the load dependence."""
    u = np.asarray(load_n, dtype=np.float64) / np.asarray(p_star_n, dtype=np.float64)
    root = np.sqrt(1.0 + 4.0 * u)
    return 4.0 * u / (root * (1.0 + root)) - 1.0


@dataclass(frozen=True)
class SizeEffectLaw:
    """ln H = ln H0 + ln g(max(P, min_load_n) / P*(x)), ln P* = c0 + c1 x (x: ``class_column``).

    ``sigma_log_p_star``: spread of ln P* between compounds around that relation (the data's
    scatter); the interval widens by how much that scatter moves ln H between the requested load
    and ``reference_load_n`` (the geometric-mean load of the data, where H0 is pinned)."""

    load_column: int
    class_column: int
    log_p_star_intercept: float
    log_p_star_slope: float
    min_load_n: float
    reference_load_n: float
    sigma_log_p_star: float
    term_mean: float = 0.0

    def p_star(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self.log_p_star_intercept + self.log_p_star_slope * x)

    def plateau_factor(self, x: np.ndarray) -> np.ndarray:
        """(n,) H / H0 at and below ``min_load_n``, where the factor is held (x: ``class_column``)."""
        return psr_factor(np.full(np.shape(x), self.min_load_n), self.p_star(x))

    def log_factor(self, X: np.ndarray) -> np.ndarray:
        """(n,) ln g at each row's load and composition."""
        load = np.maximum(X[:, self.load_column], self.min_load_n)
        return np.log(psr_factor(load, self.p_star(X[:, self.class_column])))

    def half_width(self, X: np.ndarray) -> np.ndarray:
        """(n,) link-space uncertainty of the load correction: how far one sigma of ln P* moves
        ln H at the requested load relative to the reference load (0 at the reference load)."""
        p_star = self.p_star(X[:, self.class_column])
        load = np.maximum(X[:, self.load_column], self.min_load_n)
        moved = log_psr_slope(load, p_star) - log_psr_slope(np.full_like(load, self.reference_load_n), p_star)
        return self.sigma_log_p_star * np.abs(moved)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
