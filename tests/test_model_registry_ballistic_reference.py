import re

from model_registry import ballistic_reference as ref

KNOWN = {
    "threat_table",
    "threat_areal_density_ratio",
    "material_areal_density_ratio",
    "bfd_at_ballistic_limit",
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
