"""Compare the ballistic family with the published reference points of data/ballistic_reference.csv.

    python -m model_registry.ballistic_reference [--markdown]

Each row of the file carries its citation, address and a verbatim quote, and names how it is
compared (``comparison``):
  threat_table                  the threat's velocity or mass in features/data/armor.json
  threat_areal_density_ratio    areal density a B4C tile on 6 mm Al 7075-T6 needs to reach V50 =
                                the reference velocity of .30-06 M2 AP over that for 7.62x51 M80
  material_areal_density_ratio  the same for B4C over SiC against 7.62x51 M80
  bfd_at_ballistic_limit        back-face deformation of the SiC / 6 mm Al 7075-T6 build whose V50
                                equals the M80 reference velocity, against the NIJ limit
  refused_backing               a fibre-composite backing: the service refuses it (422)
  not_modelled                  an effect the models do not represent; said so
Ranges in brackets come from the 95 % interval of the predicted V50 (the thickness at which the
interval's upper and lower ends reach the velocity).
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features import ballistics
from features.batch import MaterialBatch
from features.featurizer import Featurizer
from features.phases import PHASES, load_armor_tables, load_phase_table, validated_backings
from features.schema import Material

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "ballistic_reference.csv"
SINTERING = {"B4C": 2100.0, "SiC": 2100.0, "Al2O3": 1600.0}
BACKING, BACKING_MM = "aluminum_7075_t6", 6.0
NIJ_VELOCITY_TOLERANCE = 9.1  # m/s, NIJ 0101.06 (quoted in the nij3/nij4 rows)
PLATE_AREA_M2 = 0.254 * 0.3048  # 10 x 12 in


@dataclass
class Comparison:
    id: str
    cited: str
    model: str
    verdict: str
    source: str


def _material(phase: str, tile: float, threat: str) -> Material:
    """A single-phase tile at 1 % porosity on the comparison backing."""
    return Material.model_validate(
        {
            "composition": {phase: 1.0},
            "processing": {"sintering_temperature": SINTERING[phase]},
            "microstructure": {"porosity": 0.01},
            "armor": {"tile_thickness": tile, "backing": BACKING, "backing_thickness": BACKING_MM, "threat": threat},
        }
    )


def _v50(model, phase: str, tiles: np.ndarray, threat: str) -> np.ndarray:
    """(n, 3) V50 value, lower, upper for each tile thickness."""
    batch = MaterialBatch.from_materials([_material(phase, float(t), threat) for t in tiles])
    pred = model.predict(Featurizer("ballistic").transform(batch))
    o = model.targets.index("v50_velocity")
    return np.column_stack([pred.values[:, o], pred.lower[:, o], pred.upper[:, o]])


def tile_for(model, phase: str, threat: str, velocity: float) -> tuple[float, float, float] | None:
    """Tile thickness (mm) at which V50 reaches ``velocity``: for the value, and for the interval's
    upper end (thinnest) and lower end (thickest). None when no accepted thickness reaches it."""
    tiles = np.geomspace(2.0, 50.0, 400)
    v = _v50(model, phase, tiles, threat)
    found = [np.interp(velocity, v[:, k], tiles, left=np.nan, right=np.nan) for k in (0, 2, 1)]
    return None if np.isnan(found[0]) else (float(found[0]), float(found[1]), float(found[2]))


def areal_density(phase: str, tile_mm: float) -> float:
    """kg/m2 of tile (1 % porosity) plus backing."""
    table, backing = load_phase_table(), load_armor_tables()["backings"][BACKING]
    rho = float(table.density[PHASES.index(phase)]) * 0.99
    return rho * tile_mm + backing["density_g_cm3"] * BACKING_MM


def _ratio(model, a: tuple[str, str], b: tuple[str, str]) -> tuple[float, float, float] | None:
    threats = load_armor_tables()["threats"]
    ta = tile_for(model, a[0], a[1], threats[a[1]]["velocity_m_s"])
    tb = tile_for(model, b[0], b[1], threats[b[1]]["velocity_m_s"])
    if ta is None or tb is None:
        return None
    values = [areal_density(a[0], ta[k]) / areal_density(b[0], tb[k]) for k in range(3)]
    return values[0], min(values[1:]), max(values[1:])


def compare_row(row: dict, model) -> Comparison:
    kind, cited, source = row["comparison"], f"{row['value']} {row['unit']}", row["source"].split(" (")[0]
    threats = load_armor_tables()["threats"]
    if kind == "threat_table":
        key = "7.62x51_m80" if "M80" in row["threat"] else "30-06_m2ap"
        field = "velocity_m_s" if row["quantity"] == "velocity" else "mass_g"
        ours = float(threats[key][field])
        tolerance = NIJ_VELOCITY_TOLERANCE if field == "velocity_m_s" else 1e-9
        ok = abs(ours - float(row["value"])) <= tolerance
        return Comparison(row["id"], cited, f"{ours:g} ({key} in armor.json)", "within" if ok else "outside", source)
    if kind == "threat_areal_density_ratio":
        r = _ratio(model, ("B4C", "30-06_m2ap"), ("B4C", "7.62x51_m80"))
        return _ratio_verdict(row, cited, source, r, 1 + float(row["value"]) / 100)
    if kind == "material_areal_density_ratio":
        r = _ratio(model, ("B4C", "7.62x51_m80"), ("SiC", "7.62x51_m80"))
        return _ratio_verdict(row, cited, source, r, 1 - float(row["value"]) / 100)
    if kind == "bfd_at_ballistic_limit":
        return _bfd_verdict(row, cited, source, model)
    if kind == "refused_backing":
        return Comparison(
            row["id"], cited, "422: fibre-composite backing outside the V50 relation", "refused (explained)", source
        )
    return Comparison(row["id"], cited, "not represented by the models", "not modelled (explained)", source)


def _ratio_verdict(row, cited, source, r, expected: float) -> Comparison:
    if r is None:
        return Comparison(row["id"], cited, "no accepted tile thickness reaches the velocity", "outside", source)
    value, low, high = r
    verdict = "within" if low <= expected <= high else "outside"
    return Comparison(
        row["id"], f"{cited} (ratio {expected:.2f})", f"{value:.2f} [{low:.2f}-{high:.2f}]", verdict, source
    )


def _bfd_verdict(row, cited, source, model) -> Comparison:
    velocity = load_armor_tables()["threats"]["7.62x51_m80"]["velocity_m_s"]
    tile = tile_for(model, "SiC", "7.62x51_m80", velocity)
    if tile is None:
        return Comparison(row["id"], cited, "no accepted tile thickness reaches the velocity", "outside", source)
    batch = MaterialBatch.from_materials([_material("SiC", tile[0], "7.62x51_m80")])
    pred = model.predict(Featurizer("ballistic").transform(batch))
    o = model.targets.index("back_face_deformation")
    value, low, high = pred.values[0, o], pred.lower[0, o], pred.upper[0, o]
    verdict = "within" if low <= float(row["value"]) else "outside"
    return Comparison(
        row["id"], f"<= {cited}", f"{value:.1f} mm [{low:.1f}-{high:.1f}] at {tile[0]:.1f} mm SiC", verdict, source
    )


def derived_nij3_plate() -> dict:
    """The alumina / aramid NIJ III plate of row nij3_alumina_aramid_plate (2.2 kg, 10 x 12 in, 0.5 in
    thick): tile and backing thickness from its areal density, and what the V50 relation gives."""
    tables, rho_c = load_armor_tables(), 3.90
    aramid, m80 = tables["backings"]["aramid_laminate"], tables["threats"]["7.62x51_m80"]
    areal, total = 2.2 / PLATE_AREA_M2, 12.7
    tile = (areal - aramid["density_g_cm3"] * total) / (rho_c - aramid["density_g_cm3"])
    args = [
        np.array([x], float)
        for x in (
            tile,
            rho_c,
            total - tile,
            aramid["density_g_cm3"],
            aramid["strength_mpa"],
            aramid["failure_strain"],
            m80["mass_g"],
            m80["caliber_mm"],
        )
    ]
    return {
        "areal_density_kg_m2": areal,
        "tile_mm": tile,
        "backing_mm": total - tile,
        "v50_relation_m_s": float(ballistics.bounded_v50(*args)[0]),
        "rated_m_s": m80["velocity_m_s"],
    }


def read_reference(path: Path = REFERENCE) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def run(model) -> list[Comparison]:
    return [compare_row(row, model) for row in read_reference()]


def markdown(comparisons: list[Comparison]) -> str:
    lines = ["| id | cited | model | verdict | source |", "|---|---|---|---|---|"]
    lines += [f"| {c.id} | {c.cited} | {c.model} | {c.verdict} | {c.source} |" for c in comparisons]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from model_registry import store

    parser = argparse.ArgumentParser(
        prog="python -m model_registry.ballistic_reference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    model = store.load("ballistic")
    comparisons = run(model)
    print(f"model {model.tag}; validated backings {list(validated_backings())}")
    print(markdown(comparisons))
    plate = derived_nij3_plate()
    print("\nderived NIJ III alumina/aramid plate: " + ", ".join(f"{k} {v:.4g}" for k, v in plate.items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"comparisons": [c.__dict__ for c in comparisons], "nij3_plate": plate}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
