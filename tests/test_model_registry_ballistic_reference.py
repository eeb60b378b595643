import re

from model_registry import ballistic_reference as ref

KNOWN = {
    "threat_table",
    "threat_areal_density_ratio",
    "material_areal_density_ratio",
    "bfd_at_ballistic_limit",
    "dop_ratio",
    "refused_backing",
    "not_modelled",
}


def test_every_reference_row_is_cited_and_has_a_known_comparison():
    rows = ref.read_reference()
    assert len(rows) >= 10
    for row in rows:
        assert row["comparison"] in KNOWN, row["id"]
        assert row["source"] and row["address"] and row["quote"], row["id"]
        for number in re.findall(r"\d+(?:\.\d+)?", row["value"]):  # every cited number is in the quote
            assert number in row["quote"].replace(",", ""), (row["id"], number)


def test_every_row_gets_a_verdict_on_the_small_model(trained):
    comparisons = ref.run(trained["ballistic"].model)
    assert [c.id for c in comparisons] == [r["id"] for r in ref.read_reference()]
    assert {c.verdict.split(" ")[0] for c in comparisons} <= {"within", "outside", "refused", "not"}
    threat_rows = [
        c
        for c in comparisons
        if c.id.startswith("nij") and c.id != "nij3_alumina_aramid_plate" and c.id != "nij_bfs_limit"
    ]
    assert threat_rows and all(c.verdict == "within" for c in threat_rows)


def test_derived_nij3_plate_adds_up_to_its_weight_and_thickness():
    plate = ref.derived_nij3_plate()
    assert plate["tile_mm"] + plate["backing_mm"] == 12.7
    assert plate["areal_density_kg_m2"] == 2.2 / ref.PLATE_AREA_M2


def test_a_composition_of_a_dop_row_reads_fractions_and_basis():
    assert ref.parse_composition("ZrO2:0.1,Al2O3:0.9 (weight)") == {"ZrO2": 0.1, "Al2O3": 0.9, "basis": "weight"}
    assert ref.parse_composition("Al2O3:1") == {"Al2O3": 1.0, "basis": "volume"}


def test_numeric_rows_reach_the_parity_plot(trained, tmp_path):
    comparisons = ref.run(trained["ballistic"].model)
    numeric = [c for c in comparisons if c.cited_value is not None and c.model_value is not None]
    assert {c.id for c in numeric} >= {"nij3_velocity", "esapi_vs_sapi_mass", "zhang_li_zta_dop", "wade_zhu_nzta_dop"}
    for c in numeric:
        if c.model_low is not None:
            assert c.model_low <= c.model_value <= c.model_high, c.id
    path = tmp_path / "parity.png"
    assert ref.parity_plot(comparisons, str(path)) == len(numeric)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_rated_plate_row_gives_its_weight_over_its_size():
    rows = {r["id"]: r for r in ref.read_reference()}
    medium = ref.plate_areal_density(rows["sapi_medium_plate"])
    assert medium == 4.0 * 0.45359237 / (9.5 * 0.0254 * 12.5 * 0.0254)
    assert 23.0 < medium < 24.5
    assert ref.plate_areal_density(rows["nij3_velocity"]) is None
    assert set(ref.rated_plates()) >= {"sapi_small_plate", "sapi_medium_plate", "sapi_large_plate", "sapi_xl_plate"}
