"""Ballistic relations behind the ballistic family's physics baseline, vectorised.

Florence (1969, AMMRC CR 69-15; ../shared/reference/armor-ceramics.md section 2) is kept for the
thin-tile regime it was derived for. With its cone radius a = a_p + 2 h1 the predicted V50 grows
as h1^2 or faster, "which no measured armor system shows for thick tiles" (same reference). Beyond
the thin-tile limit the tile is treated as an energy absorber whose absorbed energy grows in
proportion to its thickness (the work of eroding the projectile through a thicker tile), so
V50^2 grows linearly with thickness:

    V50(h1) = V_F(h1)                              for h1 <= h*
    V50(h1) = V_F(h*) sqrt(h1 / h*)                for h1 >  h*

h* is the thin-tile limit, taken as one projectile calibre (the tiles of Florence's and
Wilkins' experiments were of the order of the calibre). This choice is this project's, stated
here and checked against the published points in data/ballistic_reference.csv
(docs/science.md); it is not a measured constant.
"""

from __future__ import annotations

import numpy as np

from features import physics


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
