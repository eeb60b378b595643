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
  dop_ratio                     depth-of-penetration efficiency of one ceramic over another
                                (``ceramic``: "A vs B", each "phase:fraction,..." with an optional
                                "(weight)"), against the published direction (">1": better, "<=1":
                                no benefit); the model's penetration resistance of the two at 1 %
                                porosity on the comparison backing against .30-06 M2 AP
  refused_backing               a fibre-composite backing: the service refuses it (422)
  not_modelled                  an effect the models do not represent; said so
Ranges in brackets come from the 95 % interval of the predicted V50 (the thickness at which the
interval's upper and lower ends reach the velocity) or of the predicted quantity. A verdict is
"within" when that range reaches the published value or side.

    python -m model_registry.ballistic_reference --json docs/science-ballistic.json \
        --plot docs/ballistic-parity.png
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features import ballistics, physics
from features.batch import MaterialBatch
from features.featurizer import Featurizer
from features.phases import PHASES, load_armor_tables, load_phase_table, validated_backings
from features.schema import Material

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "ballistic_reference.csv"
SINTERING = {"B4C": 2100.0, "SiC": 2100.0, "Al2O3": 1600.0}
BACKING, BACKING_MM = "aluminum_7075_t6", 6.0
NIJ_VELOCITY_TOLERANCE = 9.1  # m/s, NIJ 0101.06 (quoted in the nij3/nij4 rows)
PLATE_AREA_M2 = 0.254 * 0.3048  # 10 x 12 in
OPTIMUM_AREAL_DENSITIES = (30.0, 45.0, 60.0, 90.0, 150.0)  # kg/m2 at which Florence's optimum build is reported
POUND_KG, INCH_M = 0.45359237, 0.0254
PLATE_SIZE = re.compile(r"(\d+(?:\.\d+)?) x (\d+(?:\.\d+)?) in")


@dataclass
class Comparison:
    id: str
    cited: str
    model: str
    verdict: str
    source: str
    # for the parity plot: the published number (a bound when ``relation`` is not "="), and the
    # model's value with its range; None where the row has no number to compare
    cited_value: float | None = None
    relation: str = "="
    model_value: float | None = None
    model_low: float | None = None
    model_high: float | None = None
    scale: str = "absolute"  # "ratio": a dimensionless ratio (its own panel of the parity plot)


def _material(phase: str, tile: float, threat: str) -> Material:
    """A single-phase tile at 1 % porosity on the comparison backing."""
    return _tile({phase: 1.0}, SINTERING[phase], tile, threat)


def _tile(composition: dict, sintering_c: float, tile: float, threat: str) -> Material:
    return Material.model_validate(
        {
            "composition": composition,
            "processing": {"sintering_temperature": sintering_c},
            "microstructure": {"porosity": 0.01},
            "armor": {"tile_thickness": tile, "backing": BACKING, "backing_thickness": BACKING_MM, "threat": threat},
        }
    )


def _predict(model, materials: list[Material], target: str) -> np.ndarray:
    """(n, 3) value, lower, upper of ``target`` for each material."""
    pred = model.predict(Featurizer("ballistic").transform(MaterialBatch.from_materials(materials)))
    o = model.targets.index(target)
    return np.column_stack([pred.values[:, o], pred.lower[:, o], pred.upper[:, o]])


def parse_composition(text: str) -> dict:
    """ "ZrO2:0.1,Al2O3:0.9 (weight)" -> {"ZrO2": 0.1, "Al2O3": 0.9, "basis": "weight"}."""
    basis = "weight" if "(weight)" in text else "volume"
    pairs = [p.split(":") for p in text.replace("(weight)", "").strip().split(",")]
    return {**{name.strip(): float(f) for name, f in pairs}, "basis": basis}


def _v50(model, phase: str, tiles: np.ndarray, threat: str) -> np.ndarray:
    """(n, 3) V50 value, lower, upper for each tile thickness."""
    return _predict(model, [_material(phase, float(t), threat) for t in tiles], "v50_velocity")


def tile_for(model, phase: str, threat: str, velocity: float) -> tuple[float, float, float] | None:
    """Tile thickness (mm) at which V50 reaches ``velocity``: for the value, and for the interval's
    upper end (thinnest) and lower end (thickest). None when no accepted thickness reaches it."""
    tiles = np.geomspace(2.0, 50.0, 400)
    v = _v50(model, phase, tiles, threat)
    found = [np.interp(velocity, v[:, k], tiles, left=np.nan, right=np.nan) for k in (0, 2, 1)]
    return None if np.isnan(found[0]) else (float(found[0]), float(found[1]), float(found[2]))


def areal_density(phase: str, tile_mm: float) -> float:
    """kg/m2 of tile (1 % porosity) plus backing."""
    return ballistics.build_of({phase: 1.0}, 0.01, tile_mm, BACKING, BACKING_MM, "7.62x51_m80").areal_density


def _ratio(model, a: tuple[str, str], b: tuple[str, str]) -> tuple[float, float, float] | None:
    threats = load_armor_tables()["threats"]
    ta = tile_for(model, a[0], a[1], threats[a[1]]["velocity_m_s"])
    tb = tile_for(model, b[0], b[1], threats[b[1]]["velocity_m_s"])
    if ta is None or tb is None:
        return None
    values = [areal_density(a[0], ta[k]) / areal_density(b[0], tb[k]) for k in range(3)]
    return values[0], min(values[1:]), max(values[1:])


def plate_areal_density(row: dict) -> float | None:
    """kg/m2 of a rated plate whose weight (lb) the row cites and whose size ("W x H in") its
    ``quantity`` names: the weight over the bounding rectangle (a SAPI cut clips two corners, so the
    plate's own areal density is somewhat higher). None for any other row."""
    size = PLATE_SIZE.search(row["quantity"])
    if row["unit"] != "lb" or size is None:
        return None
    return float(row["value"]) * POUND_KG / (float(size[1]) * INCH_M * float(size[2]) * INCH_M)


def compare_row(row: dict, model) -> Comparison:
    kind, cited, source = row["comparison"], f"{row['value']} {row['unit']}", row["source"].split(" (")[0]
    plate = plate_areal_density(row)
    if plate is not None:
        cited += f" ({plate:.1f} kg/m2 over the bounding rectangle)"
    threats = load_armor_tables()["threats"]
    if kind == "threat_table":
        key = "7.62x51_m80" if "M80" in row["threat"] else "30-06_m2ap"
        field = "velocity_m_s" if row["quantity"] == "velocity" else "mass_g"
        ours = float(threats[key][field])
        tolerance = NIJ_VELOCITY_TOLERANCE if field == "velocity_m_s" else 1e-9
        ok = abs(ours - float(row["value"])) <= tolerance
        verdict = "within" if ok else "outside"
        model = f"{ours:g} ({key} in armor.json)"
        return Comparison(row["id"], cited, model, verdict, source, cited_value=float(row["value"]), model_value=ours)
    if kind == "threat_areal_density_ratio":
        r = _ratio(model, ("B4C", "30-06_m2ap"), ("B4C", "7.62x51_m80"))
        return _ratio_verdict(row, cited, source, r, 1 + float(row["value"]) / 100)
    if kind == "material_areal_density_ratio":
        r = _ratio(model, ("B4C", "7.62x51_m80"), ("SiC", "7.62x51_m80"))
        return _ratio_verdict(row, cited, source, r, 1 - float(row["value"]) / 100)
    if kind == "bfd_at_ballistic_limit":
        return _bfd_verdict(row, cited, source, model)
    if kind == "dop_ratio":
        return _dop_verdict(row, cited, source, model)
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
        row["id"],
        f"{cited} (ratio {expected:.2f})",
        f"{value:.2f} [{low:.2f}-{high:.2f}]",
        verdict,
        source,
        cited_value=expected,
        model_value=value,
        model_low=low,
        model_high=high,
        scale="ratio",
    )


def _dop_verdict(row, cited, source, model) -> Comparison:
    """The model's penetration-resistance ratio of the row's two ceramics against the published side of 1."""
    first, second = (parse_composition(t) for t in row["ceramic"].split(" vs "))
    sintering = SINTERING["Al2O3"]  # both alumina-based in the published rows
    pred = _predict(model, [_tile(c, sintering, 10.0, "30-06_m2ap") for c in (first, second)], "penetration_resistance")
    value, low, high = pred[0, 0] / pred[1, 0], pred[0, 1] / pred[1, 2], pred[0, 2] / pred[1, 1]
    better = row["value"].strip() == ">1"
    verdict = "within" if (high > 1.0 if better else low <= 1.0) else "outside"
    return Comparison(
        row["id"],
        f"{row['value']} ({row['quantity']})",
        f"{value:.3f} [{low:.3f}-{high:.3f}]",
        verdict,
        source,
        cited_value=1.0,
        relation=">" if better else "<=",
        model_value=float(value),
        model_low=float(low),
        model_high=float(high),
        scale="ratio",
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
        row["id"],
        f"<= {cited}",
        f"{value:.1f} mm [{low:.1f}-{high:.1f}] at {tile[0]:.1f} mm SiC",
        verdict,
        source,
        cited_value=float(row["value"]),
        relation="<=",
        model_value=float(value),
        model_low=float(low),
        model_high=float(high),
    )


def rated_plates() -> dict[str, float]:
    """Areal density (kg/m2) of every rated plate the reference file cites by weight and size."""
    return {row["id"]: ad for row in read_reference() if (ad := plate_areal_density(row)) is not None}


def metal_build_at_m80(model, phase: str = "SiC") -> tuple[float, float, float] | None:
    """Areal density (kg/m2) of the ``phase`` tile (1 % porosity) on 6 mm Al 7075-T6 whose predicted
    V50 equals the 7.62x51 M80 reference velocity: value and the range from the V50 interval. The
    build of row nij_bfs_limit; what the served model asks of a metal-backed plate for the threat a
    SAPI plate is rated against."""
    velocity = load_armor_tables()["threats"]["7.62x51_m80"]["velocity_m_s"]
    tile = tile_for(model, phase, "7.62x51_m80", velocity)
    if tile is None:
        return None
    value, thin, thick = (areal_density(phase, t) for t in tile)
    return value, thin, thick


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


def florence_optimum(phase: str, backing: str, threat: str, areal_density_kg_m2: float) -> tuple[float, float, float]:
    """Hetherington's (1992) criterion applied to Florence's relation: the tile and backing
    thicknesses (mm) of a dense ``phase`` tile on ``backing`` that maximise Florence's V50 at a
    given areal density, and that V50 (m/s). Nothing fitted: it only reads the relation."""
    from scipy.optimize import minimize_scalar

    tables = load_armor_tables()
    rho1 = float(load_phase_table().density[PHASES.index(phase)])
    b, t = tables["backings"][backing], tables["threats"][threat]
    rho2 = b["density_g_cm3"]

    def v50(h1: float) -> float:
        h2 = (areal_density_kg_m2 - rho1 * h1) / rho2
        args = (h1, rho1, h2, rho2, b["strength_mpa"], b["failure_strain"], t["mass_g"], t["caliber_mm"])
        return float(physics.florence_v50(*(np.array([x], float) for x in args))[0])

    best = minimize_scalar(lambda h1: -v50(h1), bounds=(1e-3, areal_density_kg_m2 / rho1 - 1e-3), method="bounded")
    h1 = float(best.x)
    return h1, (areal_density_kg_m2 - rho1 * h1) / rho2, v50(h1)


def phase_dop(model) -> dict[str, tuple[float, float, float]]:
    """Penetration resistance (DOP mass efficiency) of each armor phase alone against .30-06 M2 AP,
    value and 95 % range, every other input at its default (2 % porosity, 10 um grains)."""
    materials = [
        Material.model_validate(
            {"composition": {p: 1.0}, "processing": {"sintering_temperature": t}, "armor": {"threat": "30-06_m2ap"}}
        )
        for p, t in SINTERING.items()
    ]
    pred = _predict(model, materials, "penetration_resistance")
    return {p: (float(v), float(lo), float(hi)) for p, (v, lo, hi) in zip(SINTERING, pred, strict=True)}


def read_reference(path: Path = REFERENCE) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def run(model) -> list[Comparison]:
    return [compare_row(row, model) for row in read_reference()]


def markdown(comparisons: list[Comparison]) -> str:
    lines = ["| id | cited | model | verdict | source |", "|---|---|---|---|---|"]
    lines += [f"| {c.id} | {c.cited} | {c.model} | {c.verdict} | {c.source} |" for c in comparisons]
    return "\n".join(lines)


MARKERS = {"=": "o", "<=": "v", ">": "^"}


def _panel(ax, rows: list[Comparison], log: bool) -> None:
    label_offset = {">": (7, 8), "<=": (7, -14)}
    for k, c in enumerate(sorted(rows, key=lambda c: float(c.cited_value or 0.0))):  # neighbours alternate
        x, y = float(c.cited_value or 0.0), float(c.model_value or 0.0)
        low = y if c.model_low is None else c.model_low
        high = y if c.model_high is None else c.model_high
        color = "tab:green" if c.verdict == "within" else "tab:red"
        ax.errorbar(x, y, yerr=[[y - low], [high - y]], fmt=MARKERS[c.relation], color=color, capsize=3, ms=7)
        left = c.relation == "=" and k % 2 == 0  # equal-value neighbours: labels on alternate sides
        offset = (-7, 4) if left else label_offset.get(c.relation, (7, -10))
        ax.annotate(c.id, (x, y), textcoords="offset points", xytext=offset, fontsize=7, ha="right" if left else "left")
    values = [v for c in rows for v in (c.cited_value, c.model_low, c.model_high, c.model_value) if v is not None]
    lo, hi = (min(values) / 1.5, max(values) * 1.5) if log else (min(values) - 0.15, max(values) + 0.15)
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="model = published")
    ax.set(xlim=(lo, hi), ylim=(lo, hi))
    if log:
        ax.set(xscale="log", yscale="log")


def parity_plot(comparisons: list[Comparison], path: str) -> int:
    """Model against published value, one point per row with numbers, its 95 % range as an error
    bar; a published bound is a triangle (pointing up: the published value is a lower bound, down:
    an upper bound). Left: dimensionless ratios (linear); right: velocities, masses, depths (log).
    Returns the number of points drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for c in comparisons if c.cited_value is not None and c.model_value is not None]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    panels = (("ratio", "ratios (areal density, DOP efficiency)"), ("absolute", "m/s, g, mm"))
    for ax, (scale, title) in zip(axes, panels, strict=True):
        _panel(ax, [c for c in rows if c.scale == scale], log=scale == "absolute")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("published")
        ax.set_ylabel("model (bar: 95 % interval)")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("Ballistic family against published points (green: within, red: outside)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    from model_registry import store

    parser = argparse.ArgumentParser(
        prog="python -m model_registry.ballistic_reference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", help="write the comparisons and the derived plate here")
    parser.add_argument("--plot", help="write the parity plot (PNG) here")
    args = parser.parse_args(argv)
    model = store.load("ballistic")
    comparisons = run(model)
    print(f"model {model.tag}; validated backings {list(validated_backings())}")
    print(markdown(comparisons))
    plate = derived_nij3_plate()
    print("\nderived NIJ III alumina/aramid plate: " + ", ".join(f"{k} {v:.4g}" for k, v in plate.items()))
    optimum = {ad: florence_optimum("SiC", "aluminum_6061_t6", "7.62x51_m80", ad) for ad in OPTIMUM_AREAL_DENSITIES}
    print("\nFlorence's optimum SiC / Al 6061-T6 build against 7.62x51 M80 (Hetherington's criterion):")
    for ad, (h1, h2, v) in optimum.items():
        print(f"  {ad:g} kg/m2: tile {h1:.1f} mm, backing {h2:.1f} mm, ratio {h1 / h2:.2f}, Florence V50 {v:.0f} m/s")
    plates = rated_plates()
    listed = ", ".join(f"{k} {v:.1f}" for k, v in plates.items())
    print(f"\nrated plates, kg/m2 (weight over the bounding rectangle): {listed}")
    metal = metal_build_at_m80(model)
    if metal is not None:
        print(f"SiC on 6 mm Al 7075-T6 at V50 = M80 reference: {metal[0]:.1f} kg/m2 [{metal[1]:.1f}-{metal[2]:.1f}]")
    dop = phase_dop(model)
    print(
        "\npenetration resistance against .30-06 M2 AP (defaults): "
        + ", ".join(f"{p} {v:.2f} [{lo:.2f}-{hi:.2f}]" for p, (v, lo, hi) in dop.items())
    )
    if args.plot:
        print(f"parity plot: {parity_plot(comparisons, args.plot)} points -> {args.plot}")
    if args.json:
        with open(args.json, "w") as handle:
            optima = {
                f"{ad:g}": dict(zip(("tile_mm", "backing_mm", "v50_m_s"), o, strict=True)) for ad, o in optimum.items()
            }
            report = {
                "comparisons": [c.__dict__ for c in comparisons],
                "nij3_plate": plate,
                "florence_optimum": optima,
                "penetration_resistance_m2ap": dop,
                "rated_plates_kg_m2": plates,
                "sic_al7075_at_m80_kg_m2": metal,
            }
            json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
