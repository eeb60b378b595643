"""features/describe.py: the catalogue as one JSON document (GET /api/v1/catalogue)."""

from __future__ import annotations

import orjson

from features.catalogue import FORMULA_TARGETS, INDENTATION_LOAD, TARGETS, UNITS, inputs
from features.describe import document
from features.phases import PHASES, load_armor_tables, validated_backings
from features.schema import SUM_TOLERANCE


def test_every_input_is_described_with_its_block_unit_range_and_default():
    described = {(i["block"], i["name"]): i for i in document()["inputs"]}
    assert list(described) == [(spec.block, spec.name) for spec in inputs()]
    for spec in inputs():
        entry = described[(spec.block, spec.name)]
        assert entry["default"] == spec.default and entry["doc"] == spec.doc
        if entry["kind"] == "number":
            assert (entry["low"], entry["high"], entry["unit"]) == (spec.low, spec.high, spec.unit)
            assert entry["required"] is (spec.default is None)
        else:
            assert entry["levels"] == list(spec.levels)


def test_families_targets_units_phases_and_the_sum_rule():
    doc = document()
    assert {f: d["targets"] for f, d in doc["families"].items()} == {
        f: list(t) for f, t in {**TARGETS, **FORMULA_TARGETS}.items()
    }
    assert doc["units"] == UNITS and doc["phases"] == list(PHASES)
    assert doc["composition"]["tolerance"] == SUM_TOLERANCE
    assert doc["formula"]["load"]["low"] == INDENTATION_LOAD.low and doc["formula"]["load"]["log_scaled"]


def test_armor_levels_carry_the_threats_velocity_and_which_backings_the_v50_relation_allows():
    armor, tables = document()["armor"], load_armor_tables()
    assert {t: a["reference_velocity_m_s"] for t, a in armor["threats"].items()} == {
        t: v["velocity_m_s"] for t, v in tables["threats"].items()
    }
    assert sorted(b for b, a in armor["backings"].items() if a["v50_relation_valid"]) == sorted(validated_backings())


def test_the_document_is_json_and_a_fresh_copy_each_time():
    first = document()
    first["units"]["density"] = "changed"
    assert document()["units"]["density"] == UNITS["density"]
    assert orjson.loads(orjson.dumps(document())) == document()
