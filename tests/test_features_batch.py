"""features/batch.py: columns of validated materials, and raw columns checked against the catalogue
as arrays, which must accept exactly what the request schema accepts and fill the same defaults."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from features.batch import (
    SUM_MARGIN,
    MaterialBatch,
    concat_columns,
    conforming,
    material_columns,
    take_columns,
    with_defaults,
)
from features.catalogue import CategoricalInput, NumericInput, categorical_inputs, inputs, numeric_inputs
from features.phases import PHASES
from features.schema import SUM_TOLERANCE, Material

ABSENT = float("nan")


def _number(spec: NumericInput) -> st.SearchStrategy[float]:
    """Absent, inside or on the edges of the accepted range."""
    valid = st.sampled_from([float(spec.low), float(spec.high), -0.0 if spec.low == 0 else float(spec.low)])
    return st.one_of(st.just(ABSENT), st.floats(spec.low, spec.high), valid)


def _bad_number(spec: NumericInput) -> st.SearchStrategy[float]:
    span = spec.high - spec.low
    return st.sampled_from([spec.low - 1e-9 * span, spec.high + 1e-9 * span, spec.high * 2.0, math.inf, -math.inf])


def _level(spec: CategoricalInput) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), st.sampled_from(spec.levels))


@st.composite
def raw_rows(draw: st.DrawFn) -> dict[str, Any]:
    """One material as raw values (NaN / "": not given): valid values, fractions summing near 1,
    then at times one value out of range or unknown."""
    phases = draw(st.lists(st.sampled_from(PHASES), min_size=1, max_size=4, unique=True))
    shares = [draw(st.floats(0.01, 1.0)) for _ in phases]
    scale = draw(st.sampled_from([1.0, 1.0, 1.0, 1.005, 1 + SUM_TOLERANCE, 1 + SUM_TOLERANCE * 1.01, 0.98]))
    fractions = [ABSENT] * len(PHASES)
    for phase, share in zip(phases, shares, strict=True):
        fractions[PHASES.index(phase)] = share / sum(shares) * scale
    if draw(st.integers(0, 3)) == 0:
        fractions[draw(st.integers(0, len(PHASES) - 1))] = draw(st.sampled_from([0.0, -0.0, 1.2, -0.1, math.nan]))
    row: dict[str, Any] = {"fractions": fractions, "basis": draw(st.sampled_from(["", "volume", "weight"]))}
    row |= {spec.name: draw(_number(spec)) for spec in numeric_inputs()}
    row |= {spec.name: draw(_level(spec)) for spec in categorical_inputs()}
    if draw(st.integers(0, 3)) == 0:
        spec = draw(st.sampled_from([*inputs(), "basis"]))
        if spec == "basis":
            row["basis"] = "mass"
        elif isinstance(spec, NumericInput):
            row[spec.name] = draw(_bad_number(spec))
        else:
            row[spec.name] = draw(st.sampled_from(["plasma", spec.levels[0].upper()]))
    return row


def as_raw_columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {
        "fractions": np.array([r["fractions"] for r in rows], dtype=np.float64).reshape(len(rows), len(PHASES)),
        **{name: np.array([r[name] for r in rows], dtype=np.float64) for name in ("", *numeric_names()) if name},
        **{name: np.array([r[name] for r in rows], dtype=object) for name in ("basis", *level_names())},
    }


def numeric_names() -> list[str]:
    return [spec.name for spec in numeric_inputs()]


def level_names() -> list[str]:
    return [spec.name for spec in categorical_inputs()]


def as_body(row: dict[str, Any]) -> dict[str, Any]:
    """The material a client would send for the row: only the values given."""
    composition: dict[str, Any] = {p: f for p, f in zip(PHASES, row["fractions"], strict=True) if not math.isnan(f)}
    if row["basis"]:
        composition["basis"] = row["basis"]
    body: dict[str, Any] = {"composition": composition, "processing": {}, "microstructure": {}, "armor": {}}
    for spec in inputs():
        value = row[spec.name]
        if (isinstance(value, float) and not math.isnan(value)) or (isinstance(value, str) and value):
            body[spec.block][spec.name] = value
    return body


def _at_tolerance_edge(row: dict[str, Any]) -> bool:
    total = sum(0.0 if math.isnan(f) else f for f in row["fractions"])
    return abs(abs(total - 1.0) - SUM_TOLERANCE) <= SUM_MARGIN


@settings(max_examples=400, deadline=None)
@given(raw_rows())
def test_conforming_accepts_what_the_schema_accepts_with_the_same_values(row):
    raw = as_raw_columns([row])
    accepted = bool(conforming(raw)[0])
    try:
        material = Material.model_validate(as_body(row))
    except ValidationError:
        assert not accepted, as_body(row)
        return
    assert accepted or _at_tolerance_edge(row), as_body(row)  # the edge is left to the schema
    if accepted:
        mine, theirs = with_defaults(raw), material_columns([material])
        assert mine.keys() == theirs.keys()
        for name in mine:
            assert mine[name].tolist() == theirs[name].tolist(), name
            if name not in ("fractions", "weight_basis", *level_names()):
                assert math.copysign(1, mine[name][0]) == math.copysign(1, theirs[name][0]), name  # -0.0 stays


def test_absent_values_take_the_schemas_defaults():
    row = {"fractions": [1.0] + [ABSENT] * (len(PHASES) - 1), "basis": ""}
    row |= {name: ABSENT for name in numeric_names()} | {name: "" for name in level_names()}
    row["sintering_temperature"] = 1800.0
    material = Material.model_validate(as_body(row))
    columns = with_defaults(as_raw_columns([row]))
    for name, column in material_columns([material]).items():
        assert columns[name].tolist() == column.tolist(), name
        if column.dtype == np.float64 and name != "fractions":
            assert type(column.tolist()[0]) is type(getattr(getattr(material, spec_block(name)), name)), name


def spec_block(name: str) -> str:
    return next(spec.block for spec in inputs() if spec.name == name)


def test_a_missing_required_input_does_not_conform():
    row = {"fractions": [1.0] + [ABSENT] * (len(PHASES) - 1), "basis": ""}
    row |= {name: ABSENT for name in numeric_names()} | {name: "" for name in level_names()}
    assert conforming(as_raw_columns([row])).tolist() == [False]


def test_from_materials_is_from_columns_of_material_columns():
    materials = [
        Material.model_validate(as_body(r))
        for r in (
            {"fractions": [0.6, 0.4] + [ABSENT] * 8, "basis": "weight"},
            {"fractions": [ABSENT, 0.3, 0.7] + [ABSENT] * 7, "basis": ""},
        )
        for r in [r | {n: ABSENT for n in numeric_names()} | {n: "" for n in level_names()} | {"pressure": 30.0}]
        for r in [r | {"sintering_temperature": 1900.0}]
    ]
    one = MaterialBatch.from_materials(materials)
    two = MaterialBatch.from_columns(material_columns(materials))
    for name in one.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    assert material_columns([])["fractions"].shape == (0, len(PHASES))


def test_take_and_concat_keep_every_column_aligned():
    columns = {"a": np.arange(4.0), "b": np.array(list("wxyz"), dtype=object), "f": np.arange(8.0).reshape(4, 2)}
    both = concat_columns([take_columns(columns, np.array([3, 1])), take_columns(columns, np.array([0]))])
    assert both["a"].tolist() == [3.0, 1.0, 0.0] and both["b"].tolist() == ["z", "x", "w"]
    assert both["f"].tolist() == [[6.0, 7.0], [2.0, 3.0], [0.0, 1.0]]


@pytest.mark.parametrize("n", [1, 7, 300])
def test_normalised_fractions_do_not_depend_on_how_many_rows_are_normalised_together(n):
    """The batch's canonical forms (api.batch.flow) normalise a block of rows, the single route one row."""
    rng = np.random.default_rng(n)
    fractions = rng.dirichlet(np.ones(len(PHASES)), n) * rng.uniform(0.99, 1.01, (n, 1))
    fractions[rng.random(fractions.shape) < 0.6] = 0.0
    fractions[:, 0] += 0.05
    weight = rng.random(n) < 0.5
    together = MaterialBatch.from_columns(_columns(fractions, weight)).volume_fractions
    apart = [MaterialBatch.from_columns(_columns(fractions[i : i + 1], weight[i : i + 1])) for i in range(n)]
    assert (together == np.vstack([batch.volume_fractions for batch in apart])).all()


def _columns(fractions: np.ndarray, weight: np.ndarray) -> dict[str, Any]:
    n = len(fractions)
    return {
        "fractions": fractions,
        "weight_basis": weight,
        **{name: np.ones(n) for name in numeric_names()},
        **{name: np.zeros(n, dtype=np.int64) for name in level_names()},
    }


def test_material_rows_give_back_the_batch():
    """``to_rows`` / ``from_rows``: how the API sends materials to the runner (runners/core.py)."""
    from dataclasses import fields

    from features.batch import MATERIAL_ROW_WIDTH
    from tests.support import example, request

    materials = [request(microstructure={**example()["microstructure"], "porosity": p}) for p in (0.01, 0.2)]
    batch = MaterialBatch.from_materials(materials)
    rows = batch.to_rows()
    assert rows.shape == (2, MATERIAL_ROW_WIDTH) and rows.dtype == np.float64
    back = MaterialBatch.from_rows(rows)
    for field in fields(MaterialBatch):
        np.testing.assert_array_equal(getattr(back, field.name), getattr(batch, field.name))
        assert getattr(back, field.name).dtype.kind == getattr(batch, field.name).dtype.kind
    rows[:, -1] = 99  # the last field is a categorical code: out of its range
    with pytest.raises(ValueError, match="codes must be in"):
        MaterialBatch.from_rows(rows)
    with pytest.raises(ValueError, match="material rows of"):
        MaterialBatch.from_rows(rows[:, :-1])
