"""The catalogue is the one owner of inputs and targets: everything else must agree with it."""

import ast
from dataclasses import fields
from pathlib import Path

from features import catalogue
from features.batch import NUMERIC_INPUTS, MaterialBatch
from features.schema import ArmorConfig, Material, Microstructure, Processing

FEATURES = Path(__file__).resolve().parent.parent / "features"
HIGHER_LAYERS = ("model_registry", "api", "runners", "caching", "monitoring", "service", "settings", "loadtests")


def test_request_blocks_are_built_from_the_catalogue():
    for block, model in (("processing", Processing), ("microstructure", Microstructure), ("armor", ArmorConfig)):
        assert tuple(model.model_fields) == tuple(i.name for i in catalogue.block_inputs(block))
        for spec in catalogue.block_inputs(block):
            schema = model.model_json_schema()["properties"][spec.name]
            if isinstance(spec, catalogue.NumericInput):
                assert (schema["minimum"], schema["maximum"], schema["unit"]) == (spec.low, spec.high, spec.unit)
            else:
                assert tuple(schema["enum"]) == spec.levels
    assert set(Material.model_fields) == {"composition", *catalogue.BLOCKS}


def test_batch_columns_are_the_catalogue_inputs():
    assert NUMERIC_INPUTS == catalogue.numeric_names()
    batch_fields = {f.name for f in fields(MaterialBatch)} - {"volume_fractions"}
    assert batch_fields == {i.name for i in catalogue.inputs()}


def test_every_target_has_a_unit_and_a_family():
    assert set(catalogue.UNITS) == {t for family in catalogue.TARGETS.values() for t in family}
    assert tuple(catalogue.TARGETS) == catalogue.FAMILIES


def test_features_imports_nothing_above_it():
    for path in FEATURES.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                assert name.split(".")[0] not in HIGHER_LAYERS, (path.name, name)


def test_a_backing_is_one_entry_of_armor_json_with_every_field_the_code_reads():
    from features.phases import load_armor_tables

    needed = {"density_g_cm3", "strength_mpa", "failure_strain", "v50_relation_valid", "bfd_compliance", "source"}
    backings = load_armor_tables()["backings"]
    assert all(needed <= set(b) for b in backings.values()), {n: needed - set(b) for n, b in backings.items()}
    assert dict(catalogue.categorical_levels())["backing"] == tuple(backings)
    assert set(catalogue.BUILD_UNITS) == {"areal_density", "v50_margin"}
