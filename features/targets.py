"""The physics baseline every model is built on (targets and units: ``features.catalogue``).

Each target is predicted as

    g(y) = sum_k beta_k T_k(x) + c + f(x)

where g is the target's link (``log`` for positive quantities, ``logit`` for a probability),
T_k are physics terms computed from featurizer columns, beta_k are either fixed by an exact
relation (``fixed``) or fitted by least squares with the sign the physics prescribes, and f is
a tree-ensemble correction, constrained monotone in every column that carries a physical trend.
Trees predict a constant beyond the data, so outside the training range the trend of the
answer is the trend of the physics terms, never a flat line, and the correction cannot reverse
it anywhere. The baseline is a property of the featurizer's columns, not of any data set, so the
same pipeline trains on measured data (``model_registry train --data``).

Relations and their sources (../shared/reference/armor-ceramics.md, section 2):
  density      rho = rho_th (1 - P), exact: both coefficients fixed at 1
  modulus      E = E_HS exp(-2P/(1-P)) (Pabst-Gregorova), coefficient fitted >= 0
  hardness     H = H_mix exp(-b P) (Spriggs form) (1 + k' d^-1/2) (Hall-Petch), b >= 0, k' >= 0
  toughness    K = K_mix exp(-b P), b >= 0; grain-size exponent free (R-curve: sign depends on phase)
  flexural     sigma = sigma_mix exp(-b P) (Ryshkewitch-Duckworth) d^-m (flaw size ~ grain size,
               sigma ~ d^-1/2 in the reference; m fitted >= 0) x pore-size and connected-porosity
               terms with the same sign (larger pores and connected pores are larger flaws)
  compressive  sigma_c = sigma_c_mix exp(-b P) d^-m, b, m >= 0
  poisson      nu = nu_HS exp(b P), b free (the sign depends on nu_0 and pore shape)
Ballistic: ``v50_physics`` and ``velocity_margin`` (= v50_physics / threat velocity) come from
``features.ballistics``; the depth-of-penetration mass efficiency ranks with hardness
(Krell & Strassburger, Mater. Sci. Eng. A 597 (2014)) and compressive strength (Rosenberg &
Yeshurun, Int. J. Impact Eng. 7 (1988)), both with fitted exponents >= 0, and falls with porosity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from features.catalogue import BALLISTIC_TARGETS, MECHANICAL_TARGETS, TARGETS, UNITS

__all__ = [
    "BALLISTIC_TARGETS",
    "BASELINES",
    "MECHANICAL_TARGETS",
    "NUISANCE_COLUMNS",
    "TARGETS",
    "UNITS",
    "Baseline",
    "Term",
]


@dataclass(frozen=True)
class Term:
    """beta * transform(column): ``sign`` +1 (beta >= 0), -1 (beta <= 0) or 0 (free); ``fixed`` pins beta."""

    column: str
    transform: str = "identity"  # a key of model_registry.baseline.TRANSFORMS
    sign: int = 0
    fixed: float | None = None


@dataclass(frozen=True)
class Baseline:
    link: str  # "log" or "logit"
    terms: tuple[Term, ...]
    trends: dict[str, int] = field(default_factory=dict)  # input -> +1 rises, -1 falls with it (physics)


# Processing conditions that change properties and correlate with the trend inputs (porosity
# falls as the sintering temperature rises): partialled out before a trend coefficient is fitted.
NUISANCE_COLUMNS = (
    "sintering_temperature",
    "pressure",
    "holding_time",
    "heating_rate",
    "atmosphere",
    "sintering_excess",
    "homologous_temperature",
    "air_exposed_non_oxide",
    "phase_distribution",
    "interface_quality",
)

_FIXED = 1.0
BASELINES: dict[str, Baseline] = {
    "density": Baseline(
        "log",
        (Term("theoretical_density", "log", fixed=_FIXED), Term("porosity", "log1m", fixed=_FIXED)),
        {"porosity": -1},
    ),
    "vickers_hardness": Baseline(
        "log",
        (Term("hardness_mix", "log", fixed=_FIXED), Term("porosity", sign=-1), Term("hall_petch_term", sign=+1)),
        {"porosity": -1, "grain_size": -1},
    ),
    "fracture_toughness": Baseline(
        "log",
        (Term("toughness_mix", "log", fixed=_FIXED), Term("porosity", sign=-1), Term("grain_size", "log")),
        {"porosity": -1},
    ),
    "elastic_modulus": Baseline(
        "log",
        (Term("modulus_hs_mean", "log", fixed=_FIXED), Term("porosity_modulus_factor", "log", sign=+1)),
        {"porosity": -1},
    ),
    "flexural_strength": Baseline(
        "log",
        (
            Term("flexural_strength_mix", "log", fixed=_FIXED),
            Term("porosity", sign=-1),
            Term("connected_porosity", sign=-1),
            Term("grain_size", "log", sign=-1),
            Term("pore_size", "log", sign=-1),
        ),
        {"porosity": -1, "grain_size": -1, "pore_size": -1, "connectivity": -1},
    ),
    "compressive_strength": Baseline(
        "log",
        (
            Term("compressive_strength_mix", "log", fixed=_FIXED),
            Term("porosity", sign=-1),
            Term("grain_size", "log", sign=-1),
        ),
        {"porosity": -1, "grain_size": -1},
    ),
    "poisson_ratio": Baseline("log", (Term("poisson_hs", "log", fixed=_FIXED), Term("porosity"))),
    "v50_velocity": Baseline(
        "log",
        (
            Term("v50_physics", "log", sign=+1),
            Term("porosity", sign=-1),
            Term("hardness_mix", "log", sign=+1),
            Term("toughness_mix", "log", sign=+1),
            Term("hall_petch_term"),
        ),
        {"porosity": -1, "tile_thickness": +1, "backing_thickness": +1},
    ),
    "penetration_resistance": Baseline(
        "log",
        (
            Term("hardness_mix", "log", sign=+1),
            Term("compressive_strength_mix", "log", sign=+1),
            Term("porosity", sign=-1),
            Term("hall_petch_term", sign=+1),
        ),
        {"porosity": -1, "grain_size": -1},
    ),
    "back_face_deformation": Baseline(
        "log",
        (
            Term("velocity_margin", "log", sign=-1),
            Term("areal_density", "log", sign=-1),
            Term("backing_thickness", "log", sign=-1),
            Term("porosity", sign=+1),
            Term("hall_petch_term"),
            Term("hardness_mix", "log", sign=-1),
            Term("toughness_mix", "log", sign=-1),
        ),
        {"porosity": +1, "tile_thickness": -1, "backing_thickness": -1},
    ),
    "multi_hit_capability": Baseline(
        "logit",
        (
            Term("velocity_margin", sign=+1),
            Term("porosity", sign=-1),
            Term("hardness_mix", "log", sign=+1),
            Term("toughness_mix", "log", sign=+1),
        ),
        {"porosity": -1, "tile_thickness": +1, "backing_thickness": +1},
    ),
}
