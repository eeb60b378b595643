"""Ballistic relations behind the ballistic family's physics baseline, vectorised.

Florence (1969, AMMRC CR 69-15; ../shared/reference/armor-ceramics.md section 2) is kept for the
thin-tile regime it was derived for. With its cone radius a = a_p + 2 h1 the predicted V50 grows
as h1^2 or faster, "which no measured armor system shows for thick tiles" (same reference). Beyond
the thin-tile limit the tile is treated as an energy absorber whose absorbed energy grows in
proportion to its thickness (the work of eroding the projectile through a thicker tile), so
V50^2 grows linearly with thickness:

    V50(h1) = V_F(h1)                              for h1 <= h*
    V50(h1) = V_F(h*) sqrt(h1 / h*)                for h1 >  h*

h* is the thin-tile limit, taken as one projectile calibre. This choice is this project's, stated
here and checked against the published points in data/ballistic_reference.csv
(docs/science.md section 7); it is not a measured constant. Two searches (docs/science.md
section 8) found no retrievable source for the tile thicknesses of Florence's or Wilkins'
experiments or for a published optimum tile/backing ratio that could replace it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import NamedTuple

import numpy as np

from features import physics
from features.phases import PHASES, load_armor_tables, load_phase_table


def thin_tile_limit_mm(caliber_mm: np.ndarray) -> np.ndarray:
    """h*: one projectile calibre (see the module docstring for why)."""
    return caliber_mm


def bounded_v50(
    tile_mm: np.ndarray,
    tile_density: np.ndarray,
    backing_mm: np.ndarray,
    backing_density: np.ndarray,
    backing_strength_mpa: np.ndarray,
    backing_failure_strain: np.ndarray,
    projectile_mass_g: np.ndarray,
    caliber_mm: np.ndarray,
) -> np.ndarray:
    """Florence's V50 up to the thin-tile limit, sqrt growth with tile thickness beyond it (m/s)."""
    limit = thin_tile_limit_mm(caliber_mm)
    thin = np.minimum(tile_mm, limit)
    v_thin = physics.florence_v50(
        thin,
        tile_density,
        backing_mm,
        backing_density,
        backing_strength_mpa,
        backing_failure_strain,
        projectile_mass_g,
        caliber_mm,
    )
    return v_thin * np.sqrt(np.maximum(tile_mm, limit) / limit)


class Build(NamedTuple):
    """What a ballistic answer says about the build besides the predicted targets: its areal
    density (what a plate designer trades against V50) and the threat's reference velocity."""

    tile_areal_density: float  # kg/m2, the tile at its bulk density (1 - P) rho_th
    backing_areal_density: float  # kg/m2
    threat_velocity: float  # m/s, the threat's reference velocity (features/data/armor.json)

    @property
    def areal_density(self) -> float:
        """kg/m2 of the whole build."""
        return self.tile_areal_density + self.backing_areal_density


@cache
def _densities() -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Phase and backing densities (g/cm3) and threat reference velocities (m/s), by name."""
    table, armor = load_phase_table(), load_armor_tables()
    phases = {p: float(d) for p, d in zip(PHASES, table.density, strict=True)}
    backings = {name: float(b["density_g_cm3"]) for name, b in armor["backings"].items()}
    threats = {name: float(t["velocity_m_s"]) for name, t in armor["threats"].items()}
    return phases, backings, threats


def build_of(
    volume_fractions: Mapping[str, float], porosity: float, tile_mm: float, backing: str, backing_mm: float, threat: str
) -> Build:
    """The build of one material: ``volume_fractions`` by phase (absent = 0), porosity as a fraction."""
    phases, backings, threats = _densities()
    theoretical = sum(phases[p] * f for p, f in volume_fractions.items())
    # g/cm3 x mm = kg/m2
    return Build(theoretical * (1.0 - porosity) * tile_mm, backings[backing] * backing_mm, threats[threat])
