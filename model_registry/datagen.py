"""Deterministic, seeded generator of the reference training table.

The bundled data are *physics-informed synthetic data*: each row is a plausible ceramic whose
properties follow the relations of ../shared/reference/armor-ceramics.md applied to the phase
table (features/data/phases.json), with multiplicative noise that stands in for grade-to-grade
and test-to-test scatter. They are not measurements.

Noise levels (one standard deviation, multiplicative unless stated):
  density 0.4 %, elastic_modulus 2 %, vickers_hardness 4 %, fracture_toughness 5 %,
  flexural_strength 7 %, compressive_strength 6 %, poisson_ratio 0.004 (absolute),
  v50_velocity 3 %, penetration_resistance 6 %, back_face_deformation 8 %,
  multi_hit_capability 0.25 on the logit scale.

Relations (d grain size in um, P porosity, dense-mix values from features.physics):
  density            = rho_th (1 - P)
  elastic_modulus    = E_HS (Hill-like mean of the HS bounds) x exp(-2P/(1-P)) x interface
  vickers_hardness   = HV_mix (1 + 0.12 (d^-1/2 - 5^-1/2)) x exp(-5P) x sintering x oxidation
  fracture_toughness = K_mix (1 + 0.08 log10(d/5)) x exp(-3P) x interface x distribution
  flexural_strength  = sigma_mix (d/5)^-0.2 x exp(-(5+3 connectivity) P) x interface x
                       distribution x sintering x oxidation x pressure x pore size
  compressive        = sigma_c_mix (d/5)^-0.1 x exp(-5P) x sintering x oxidation
  poisson_ratio      = nu_HS (1 - 0.7 P)
 where "sintering" rises from 0.85 to 1 as the sintering temperature passes the mix's usual
 densification temperature, and "oxidation" penalises non-oxide phases fired in air.

Ballistic targets for a configuration (tile thickness, backing, backing thickness, threat):
  v50_velocity           = bounded V50 (features.ballistics: Florence up to one calibre of tile,
                           sqrt growth beyond) x (HV/25)^0.15 x (K_IC/4)^0.08 x core^-0.25
  penetration_resistance = DOP mass efficiency eta_m = 2 (HV/20)^0.7 (sigma_c/3000 MPa)^0.3
                           x core^-0.3 x (1-P)^4   (ranking after Rosenberg & Yeshurun 1988 and
                           Krell & Strassburger 2014: hardness and compressive strength)
  back_face_deformation  = 25 mm x (v_threat/V50)^2 x (30 kg/m2 / areal density)^0.3
                           x backing compliance x (6 mm / backing thickness)^0.5, only where the
                           threat is stopped (v_threat < V50); empty where it perforates
  multi_hit_capability   = probability that the tile stops a second hit of the same threat three
                           calibres from the first: sigmoid((r V50 / v_threat - 1) / 0.15), with the
                           damaged tile's retained fraction r = 0.7 + 0.3 (1 - exp(-K_IC/4)) x interface
 where "core" is the threat's core_hardness_factor and "backing compliance" the backing's
 bfd_compliance (features/data/armor.json; both assumptions of this project).
"""

from __future__ import annotations

import numpy as np

from features import ballistics, physics
from features.batch import MaterialBatch
from features.catalogue import BALLISTIC_TARGETS, MECHANICAL_TARGETS, TARGETS, UNITS, categorical_levels, numeric_inputs
from features.featurizer import armor_arrays, mixture_properties, v50_arguments
from features.phases import PHASES, load_armor_tables, validated_backings

__all__ = ["BALLISTIC_TARGETS", "MECHANICAL_TARGETS", "TARGETS", "UNITS", "generate", "sample_inputs"]
COVERAGE_FRACTION = 0.3  # rows drawn over the whole accepted domain, corners included

_PHASE_WEIGHTS = np.array([0.22, 0.18, 0.20, 0.07, 0.07, 0.08, 0.08, 0.05, 0.05])  # the 9 named phases
INTERFACE = {
    "modulus": [0.97, 0.99, 1.0, 1.005],
    "toughness": [0.85, 0.93, 1.0, 1.04],
    "strength": [0.85, 0.93, 1.0, 1.04],
}
DISTRIBUTION = {"toughness": [1.0, 1.03, 1.08], "strength": [1.0, 0.97, 0.92]}


def backing_compliance() -> np.ndarray:
    """``bfd_compliance`` of each backing (features/data/armor.json), in the order of its codes."""
    return np.array([b["bfd_compliance"] for b in load_armor_tables()["backings"].values()])


def _compositions(rng: np.random.Generator, n: int) -> np.ndarray:
    named = len(PHASES) - 1
    counts = rng.choice([1, 2, 3], size=n, p=[0.35, 0.40, 0.25])
    fractions = np.zeros((n, len(PHASES)))
    for i, k in enumerate(counts):
        chosen = rng.choice(named, size=k, replace=False, p=_PHASE_WEIGHTS / _PHASE_WEIGHTS.sum())
        fractions[i, chosen] = rng.dirichlet(np.full(k, 1.5))
    filler = rng.random(n) < 0.1
    fractions[filler, -1] = rng.uniform(0.0, 0.05, filler.sum())
    return fractions / fractions.sum(axis=1, keepdims=True)


def _log_uniform(rng, low, high, n):
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


def sample_inputs(rng: np.random.Generator, n: int) -> MaterialBatch:
    """Plausible materials and armor configurations (porosity correlated with the sintering
    temperature and pressure), and a share ``COVERAGE_FRACTION`` drawn independently over the
    whole range the API accepts (log-uniform for scale inputs), so that every accepted input has
    data, corners included."""
    fractions = _compositions(rng, n)
    probe = MaterialBatch.from_columns(_columns(fractions, rng, n, np.full(n, 1800.0), np.zeros(n)))
    densify = mixture_properties(probe)["densification_mix"]
    temperature = np.clip(densify + rng.normal(50, 100, n), 1200, 2500)
    pressure = _log_uniform(rng, 1, 200, n)
    deficit = 1.0 / (1.0 + np.exp((temperature - densify) / 80.0))
    porosity = 0.08 * deficit + 0.02 * np.exp(-pressure / 20.0) + np.abs(rng.normal(0, 0.01, n))
    columns = _columns(fractions, rng, n, temperature, np.clip(porosity, 0, 0.3), pressure)
    coverage = rng.random(n) < COVERAGE_FRACTION
    for spec in numeric_inputs():
        low, high = spec.low, spec.high
        draw = _log_uniform(rng, low, high, n) if spec.log_scaled else rng.uniform(low, high, n)
        columns[spec.name] = np.where(coverage, draw, columns[spec.name])
    return MaterialBatch.from_columns(columns)


def _columns(fractions, rng, n, temperature, porosity, pressure=None) -> dict:
    levels = categorical_levels()
    return {
        "fractions": fractions,
        "sintering_temperature": temperature,
        "pressure": pressure if pressure is not None else np.full(n, 50.0),
        "grain_size": _log_uniform(rng, 0.3, 50, n),
        "holding_time": rng.uniform(10, 600, n),
        "heating_rate": rng.uniform(2, 40, n),
        "porosity": porosity,
        "pore_size": _log_uniform(rng, 0.1, 20, n),
        "connectivity": rng.uniform(0, 1, n),
        "tile_thickness": rng.uniform(5, 25, n),
        "backing_thickness": rng.uniform(3, 25, n),
        "atmosphere": rng.choice(len(levels["atmosphere"]), n, p=[0.15, 0.35, 0.15, 0.25, 0.10]),
        "phase_distribution": rng.choice(3, n, p=[0.6, 0.25, 0.15]),
        "interface_quality": rng.choice(4, n, p=[0.1, 0.25, 0.4, 0.25]),
        "backing": rng.choice([levels["backing"].index(b) for b in validated_backings()], n),
        "threat": rng.choice(len(levels["threat"]), n),
    }


def _noise(rng, n, sigma):
    return rng.normal(1.0, sigma, n)


def mechanical_targets(batch: MaterialBatch, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, mix, p, d = len(batch), mixture_properties(batch), batch.porosity, batch.grain_size
    sintering = 0.85 + 0.15 / (1.0 + np.exp(-(batch.sintering_temperature - mix["densification_mix"]) / 60.0))
    in_air = batch.atmosphere == categorical_levels()["atmosphere"].index("air")
    oxidation = 1.0 - 0.12 * mix["non_oxide_fraction"] * in_air
    iq, dist = batch.interface_quality, batch.phase_distribution
    strength_extra = (1 + 0.03 * np.log10(batch.pressure)) / (1 + 0.02 * batch.pore_size)
    modulus_dense = 0.5 * (mix["modulus_hs_upper"] + mix["modulus_hs_lower"])
    return {
        "density": mix["theoretical_density"] * (1 - p) * _noise(rng, n, 0.004),
        "vickers_hardness": mix["hardness_mix"]
        * (1 + 0.12 * (physics.hall_petch_term(d) - 5**-0.5))
        * physics.spriggs_factor(p, 5.0)
        * (0.92 + 0.08 * (sintering - 0.85) / 0.15)
        * oxidation
        * _noise(rng, n, 0.04),
        "fracture_toughness": mix["toughness_mix"]
        * (1 + 0.08 * np.log10(d / 5))
        * physics.spriggs_factor(p, 3.0)
        * np.take(INTERFACE["toughness"], iq)
        * np.take(DISTRIBUTION["toughness"], dist)
        * _noise(rng, n, 0.05),
        "elastic_modulus": modulus_dense
        * physics.pabst_gregorova_factor(p)
        * np.take(INTERFACE["modulus"], iq)
        * _noise(rng, n, 0.02),
        "flexural_strength": mix["flexural_strength_mix"]
        * (d / 5) ** -0.2
        * np.exp(-(5 + 3 * batch.connectivity) * p)
        * np.take(INTERFACE["strength"], iq)
        * np.take(DISTRIBUTION["strength"], dist)
        * sintering
        * oxidation
        * strength_extra
        * _noise(rng, n, 0.07),
        "compressive_strength": mix["compressive_strength_mix"]
        * (d / 5) ** -0.1
        * physics.spriggs_factor(p, 5.0)
        * sintering
        * oxidation
        * _noise(rng, n, 0.06),
        "poisson_ratio": mix["poisson_hs"] * (1 - 0.7 * p) + rng.normal(0, 0.004, n),
    }


def ballistic_targets(batch: MaterialBatch, mech: dict[str, np.ndarray], rng) -> dict[str, np.ndarray]:
    n, arm = len(batch), armor_arrays(batch)
    core, v_threat = arm["threat_core_hardness_factor"], arm["threat_velocity_m_s"]
    nominal = ballistics.bounded_v50(*v50_arguments(batch, mech["density"], arm))
    hv, kic = mech["vickers_hardness"], mech["fracture_toughness"]
    v50 = nominal * (hv / 25) ** 0.15 * (kic / 4) ** 0.08 * core**-0.25 * _noise(rng, n, 0.03)
    compliance = backing_compliance()[batch.backing]
    areal = mech["density"] * batch.tile_thickness
    retained = 0.7 + 0.3 * (1 - np.exp(-kic / 4)) * np.take(INTERFACE["strength"], batch.interface_quality)
    logit = (retained * v50 / v_threat - 1.0) / 0.15 + rng.normal(0, 0.25, n)
    return {
        "v50_velocity": v50,
        "penetration_resistance": 2.0
        * (hv / 20) ** 0.7
        * (mech["compressive_strength"] / 3000) ** 0.3
        * core**-0.3
        * (1 - batch.porosity) ** 4
        * _noise(rng, n, 0.06),
        "back_face_deformation": np.where(
            v_threat < v50,
            25
            * (v_threat / v50) ** 2
            * (30 / areal) ** 0.3
            * compliance
            * (6 / batch.backing_thickness) ** 0.5
            * _noise(rng, n, 0.08),
            np.nan,
        ),
        "multi_hit_capability": 1.0 / (1.0 + np.exp(-logit)),
    }


def generate(n: int, seed: int = 20261126) -> tuple[MaterialBatch, dict[str, np.ndarray]]:
    """``n`` materials with all eleven targets; the same seed always gives the same table."""
    rng = np.random.default_rng(seed)
    batch = sample_inputs(rng, n)
    mech = mechanical_targets(batch, rng)
    return batch, {**mech, **ballistic_targets(batch, mech, rng)}
