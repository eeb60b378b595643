"""N materials in, an N x F float array out, in NumPy array operations only.

Porosity enters the mechanical features only through columns that are monotone in it
(``porosity`` and the two porosity factors), so the training can constrain every mechanical
target to never rise with porosity; bulk density, which mixes composition and porosity, is a
ballistic feature only.

Two families share one code path: ``mechanical`` uses the material features, ``ballistic``
adds the armor configuration (tile, backing, threat) and Florence's nominal ballistic limit.
The feature names and their order (``FeatureSchema``) are stored with every model and checked
when it is loaded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from features import ballistics, physics
from features.batch import MaterialBatch
from features.catalogue import FAMILIES, block_inputs, categorical_levels, numeric_names
from features.phases import PHASES, load_armor_tables, load_phase_table

__all__ = ["FAMILIES", "MONOTONE_DEPENDENCIES", "FeatureSchema", "Featurizer", "armor_arrays", "mixture_properties"]

CATEGORIES = ("composition", "processing", "microstructure", "derived", "armor")

# Inputs with a physical trend (features.targets) -> every column computed from them, with the
# sign of the column's change when the input rises. Training constrains the correction trees
# monotone in all of an input's columns together, so no column can carry a reversed trend.
MONOTONE_DEPENDENCIES: dict[str, dict[str, int]] = {
    "porosity": {
        "porosity": +1,
        "porosity_modulus_factor": -1,
        "porosity_strength_factor": -1,
        "connected_porosity": +1,
        "bulk_density": -1,
        "areal_density": -1,
        "florence_v50": -1,
        "v50_physics": -1,
        "velocity_margin": -1,
    },
    "grain_size": {"grain_size": +1, "hall_petch_term": -1},
    "pore_size": {"pore_size": +1},
    "connectivity": {"connectivity": +1, "connected_porosity": +1},
    "tile_thickness": {
        "tile_thickness": +1,
        "areal_density": +1,
        "florence_v50": +1,
        "v50_physics": +1,
        "velocity_margin": +1,
    },
    "backing_thickness": {"backing_thickness": +1, "florence_v50": +1, "v50_physics": +1, "velocity_margin": +1},
}


@dataclass(frozen=True)
class FeatureSchema:
    """Names, order and category of the columns a featurizer produces."""

    family: str
    names: tuple[str, ...]
    categories: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        """sha256 over family and ordered names: what a stored model is checked against."""
        text = self.family + "\n" + "\n".join(self.names)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "names": list(self.names),
            "categories": list(self.categories),
            "fingerprint": self.fingerprint,
        }


def _composition_features(batch: MaterialBatch) -> dict[str, tuple[str, np.ndarray]]:
    return {f"frac_{p}": ("composition", batch.volume_fractions[:, i]) for i, p in enumerate(PHASES)}


def _block_features(batch: MaterialBatch, block: str) -> dict[str, tuple[str, np.ndarray]]:
    """The raw inputs of one request block, numeric values and categorical codes alike."""
    return {i.name: (block, getattr(batch, i.name).astype(np.float64)) for i in block_inputs(block)}


def mixture_properties(batch: MaterialBatch) -> dict[str, np.ndarray]:
    """Dense-composite properties by the rule of mixtures and Hashin-Shtrikman bounds."""
    table, v = load_phase_table(), batch.volume_fractions
    e_upper, nu_upper = physics.hashin_shtrikman_modulus(v, table.bulk_modulus, table.shear_modulus, upper=True)
    e_lower, nu_lower = physics.hashin_shtrikman_modulus(v, table.bulk_modulus, table.shear_modulus, upper=False)
    return {
        "theoretical_density": physics.rule_of_mixtures(v, table.density),
        "modulus_voigt": physics.rule_of_mixtures(v, table.elastic_modulus),
        "modulus_reuss": physics.reuss_average(v, table.elastic_modulus),
        "modulus_hs_upper": e_upper,
        "modulus_hs_lower": e_lower,
        "modulus_hs_mean": 0.5 * (e_upper + e_lower),
        "poisson_hs": 0.5 * (nu_upper + nu_lower),
        "hardness_mix": physics.rule_of_mixtures(v, table.hardness),
        "toughness_mix": physics.rule_of_mixtures(v, table.toughness),
        "flexural_strength_mix": physics.rule_of_mixtures(v, table.flexural_strength),
        "compressive_strength_mix": physics.rule_of_mixtures(v, table.compressive_strength),
        "melting_mix": physics.rule_of_mixtures(v, table.melting_c),
        "densification_mix": physics.rule_of_mixtures(v, table.densification_c),
        "non_oxide_fraction": physics.rule_of_mixtures(v, table.non_oxide),
    }


def _derived_features(batch: MaterialBatch, mix: dict[str, np.ndarray]) -> dict[str, tuple[str, np.ndarray]]:
    air = float(categorical_levels()["atmosphere"].index("air"))
    derived = dict(mix)
    derived.update(
        bulk_density=(1.0 - batch.porosity) * mix["theoretical_density"],
        homologous_temperature=physics.homologous_temperature(batch.sintering_temperature, mix["melting_mix"]),
        sintering_excess=batch.sintering_temperature - mix["densification_mix"],
        hall_petch_term=physics.hall_petch_term(batch.grain_size),
        porosity_modulus_factor=physics.pabst_gregorova_factor(batch.porosity),
        porosity_strength_factor=physics.spriggs_factor(batch.porosity, b=6.0),
        connected_porosity=batch.porosity * batch.connectivity,
        air_exposed_non_oxide=mix["non_oxide_fraction"] * (batch.atmosphere == air),
        phase_count=(batch.volume_fractions > 0.01).sum(axis=1).astype(np.float64),
    )
    return {n: ("derived", a) for n, a in derived.items()}


@cache
def _armor_tables_as_arrays() -> dict[str, np.ndarray]:
    tables = load_armor_tables()
    threats, backings = tables["threats"].values(), tables["backings"].values()
    out = {
        f"threat_{k}": np.array([t[k] for t in threats], dtype=np.float64)
        for k in ("mass_g", "caliber_mm", "velocity_m_s", "core_hardness_factor")
    }
    out.update(
        {
            f"backing_{k}": np.array([b[k] for b in backings], dtype=np.float64)
            for k in ("density_g_cm3", "strength_mpa", "failure_strain")
        }
    )
    return out


def armor_arrays(batch: MaterialBatch) -> dict[str, np.ndarray]:
    """Per-row threat and backing properties looked up from their codes."""
    return {
        name: table[batch.threat if name.startswith("threat_") else batch.backing]
        for name, table in _armor_tables_as_arrays().items()
    }


def v50_arguments(batch: MaterialBatch, tile_density: np.ndarray, arm: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The arguments of ``physics.florence_v50`` and ``ballistics.bounded_v50`` for every row, in
    their order (tile, backing, threat), from the batch and its ``armor_arrays``."""
    return (
        batch.tile_thickness,
        tile_density,
        batch.backing_thickness,
        arm["backing_density_g_cm3"],
        arm["backing_strength_mpa"],
        arm["backing_failure_strain"],
        arm["threat_mass_g"],
        arm["threat_caliber_mm"],
    )


def _armor_features(batch: MaterialBatch, bulk_density: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    arm = armor_arrays(batch)
    args = v50_arguments(batch, bulk_density, arm)
    florence, v50 = physics.florence_v50(*args), ballistics.bounded_v50(*args)
    out = {"tile_thickness": ("armor", batch.tile_thickness), "backing_thickness": ("armor", batch.backing_thickness)}
    out.update({n: ("armor", a) for n, a in arm.items()})
    out["areal_density"] = ("derived", bulk_density * batch.tile_thickness)  # kg/m2 (g/cm3 x mm)
    out["florence_v50"] = ("derived", florence)
    out["v50_physics"] = ("derived", v50)
    out["velocity_margin"] = ("derived", v50 / arm["threat_velocity_m_s"])
    return out


class Featurizer:
    """Builds the feature matrix of one model family."""

    def __init__(self, family: str):
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; known: {list(FAMILIES)}")
        self.family = family
        self.schema = self._schema()

    def _columns(self, batch: MaterialBatch) -> dict[str, tuple[str, np.ndarray]]:
        derived = _derived_features(batch, mixture_properties(batch))
        bulk_density = derived.pop("bulk_density")
        columns = {
            **_composition_features(batch),
            **_block_features(batch, "processing"),
            **_block_features(batch, "microstructure"),
            **derived,
        }
        if self.family == "ballistic":
            columns["bulk_density"] = bulk_density
            columns.update(_armor_features(batch, bulk_density[1]))
        return columns

    def _schema(self) -> FeatureSchema:
        probe = MaterialBatch.from_columns(_probe_columns())
        columns = self._columns(probe)
        return FeatureSchema(self.family, tuple(columns), tuple(c for c, _ in columns.values()))

    def transform(self, batch: MaterialBatch) -> np.ndarray:
        """(N, F) float64 matrix in ``self.schema.names`` order."""
        columns = self._columns(batch)
        return np.column_stack([a for _, a in columns.values()]).astype(np.float64, copy=False)


def _probe_columns() -> dict[str, Any]:
    fractions = np.zeros((1, len(PHASES)))
    fractions[0, 0] = 1.0
    return {
        "fractions": fractions,
        **{n: [1.0] for n in numeric_names()},
        "porosity": [0.0],
        **{n: [0] for n in categorical_levels()},
    }
