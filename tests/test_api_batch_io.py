"""api/batch/io.py: CSV rows decoded as raw columns, and CSV lines written from the runner's arrays,
which must be the text the CSV writer gives for the rows' bodies."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from api.batch.flow import Answers, ChunkOutcomes, RawRow
from api.batch.io import CsvBlock, CsvEncoder, csv_columns, csv_material, float_text
from api.transport.errors import ApiError
from features.catalogue import TARGETS
from features.phases import PHASES
from runners.contract import ModelCard, Unpacked


def written(rows: list[list[float]]) -> list[str]:
    """What csv.writer writes for rows of floats (repr), without the line ends."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().splitlines()


def test_float_text_is_what_the_csv_writer_writes_for_floats():
    rng = np.random.default_rng(0)
    magnitudes = 10.0 ** rng.integers(-8, 20, (2000, 6))
    values = rng.standard_normal((2000, 6)) * magnitudes
    values[::7, 0] = rng.random(len(values[::7])) * 2e-4  # on both sides of 1e-4
    values[::11, 1] = np.array([1e16, 9999999999999998.0, 1e-4, 0.0])[np.arange(len(values[::11])) % 4]
    values[5] = [np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308]
    values[6] = np.frombuffer(rng.bytes(48), dtype=np.float64)  # any bit pattern
    assert float_text(values) == written(values.tolist())
    assert float_text(np.zeros((0, 3))) == []


def test_csv_rows_become_raw_columns_and_unusable_rows_are_left_to_the_row_path():
    header = ["SiC", "B4C", "sintering_temperature", "pressure", "atmosphere", "basis", "density"]
    lines = [
        ["0.6", "0.4", "1800", "50", "argon", "", "3.1"],
        [" 1 ", "", "1_900", "", " air ", "weight", "x"],  # blanks around, an underscore, empty cells
        ["0.6", "0.4", "hot", "50", "argon", "", ""],  # not a number
        ["0.6", "0.4", "nan", "50", "argon", "", ""],  # not finite
        ["0.6", "0.4", "1800", "50", "argon", "", "", "extra"],  # a cell too many
        ["1", "", "1800"],  # cells missing: not given
    ]
    chunk = CsvBlock(header, list(enumerate(lines, start=10)))
    positions, raw = chunk.columns()
    assert positions.tolist() == [0, 1, 5]
    fractions = raw["fractions"]
    assert fractions[:, 0].tolist() == [0.6, 1.0, 1.0] and fractions[0, 1] == 0.4
    assert np.isnan(fractions[1:, 1]).all() and np.isnan(fractions[:, 2:]).all()
    assert raw["sintering_temperature"].tolist() == [1800.0, 1900.0, 1800.0]
    assert raw["pressure"][0] == 50.0 and np.isnan(raw["pressure"][1:]).all()
    assert raw["atmosphere"].tolist() == ["argon", "air", ""] and raw["basis"].tolist() == ["", "weight", ""]
    assert (raw["threat"] == "").all() and np.isnan(raw["porosity"]).all()
    assert set(raw) == {"fractions", "basis", *TARGET_FREE_INPUTS}
    assert [chunk.row(p) for p in range(len(chunk))] == list(range(10, 16))
    assert chunk.raw(2) == csv_material(12, header, lines[2])
    assert isinstance(chunk.raw(4), RawRow) and chunk.raw(4).error is not None


TARGET_FREE_INPUTS = {
    "sintering_temperature", "pressure", "grain_size", "holding_time", "heating_rate", "atmosphere", "porosity",
    "pore_size", "connectivity", "phase_distribution", "interface_quality", "tile_thickness", "backing",
    "backing_thickness", "threat",
}  # fmt: skip


def card(targets: tuple[str, ...]) -> ModelCard:
    return ModelCard(
        tag="armor_mechanical:v1",
        name="armor_mechanical",
        version="v1",
        family="mechanical",
        targets=targets,
        created_at="2024-01-01",
        training_samples=10,
        metrics={},
        feature_names=("frac_SiC",),
        feature_categories=("composition",),
        feature_ranges={},
        feature_importance={},
    )


@pytest.mark.parametrize("with_interval", [True, False])
def test_csv_lines_from_the_runners_arrays_are_the_lines_of_the_bodies(with_interval):
    """The encoder's array path (``chunk``) against its body path (``rows`` of the outcomes)."""
    targets = TARGETS["mechanical"]
    shuffled = tuple(reversed(targets))  # the card's order need not be the CSV's
    rng = np.random.default_rng(1)
    values = rng.random((3, len(targets))) * 10.0 ** rng.integers(-6, 18, (3, len(targets)))
    values[1, 0] = np.nan
    out = Unpacked(np.zeros(3), values, values * 0.9, values * 1.1, np.zeros((3, len(targets))), None)
    warnings = [[], ['a "quoted", comma; warning', "line\nbreak"], ["plain"]]
    answers = Answers([4, 5, 7], card(shuffled), out, warnings, [False, True, False], with_interval, False, [None] * 3)
    error = {"row": 6, "error": {"status": 422, "type": "validation_error", "message": "invalid request: x, y"}}
    cached = answers.outcome(2) | {"row": 8, "cached": True}
    done = ChunkOutcomes([0, 1, error, 2, cached], answers)
    by_chunk, by_rows = CsvEncoder(targets), CsvEncoder(targets)
    assert by_chunk.chunk(done) == by_rows.rows(done.outcomes())
    lines = list(csv.reader(io.StringIO(by_chunk.chunk(done).decode())))
    assert [line[0] for line in lines] == ["4", "5", "6", "7", "8"]


def test_ballistic_csv_rows_carry_the_build_from_both_paths():
    targets = TARGETS["ballistic"]
    values = np.arange(12.0).reshape(3, 4) + 1.0
    out = Unpacked(np.zeros(3), values, values * 0.9, values * 1.1, np.zeros((3, 4)), None)
    builds = [{"areal_density": {"value": 40.0 + i}, "v50_margin": {"value": -5.5 * i}} for i in range(3)]
    answers = Answers([0, 1, 2], card(targets), out, [[], [], []], [False] * 3, True, False, builds)
    done = ChunkOutcomes([0, 1, 2], answers)
    by_chunk, by_rows = CsvEncoder(targets), CsvEncoder(targets)
    assert by_chunk.chunk(done) == by_rows.rows(done.outcomes())
    header = csv_columns(targets)
    lines = list(csv.DictReader(io.StringIO(",".join(header) + "\n" + by_chunk.chunk(done).decode())))
    assert [(r["areal_density"], r["v50_margin"]) for r in lines] == [
        ("40.0", "-0.0"),
        ("41.0", "-5.5"),
        ("42.0", "-11.0"),
    ]


def test_phase_columns_are_the_fractions_in_the_order_of_phases():
    header = ["other", "SiC", "sintering_temperature"]
    _, raw = CsvBlock(header, [(0, ["0.25", "0.75", "1800"])]).columns()
    expected = np.full(len(PHASES), np.nan)
    expected[PHASES.index("other")], expected[PHASES.index("SiC")] = 0.25, 0.75
    np.testing.assert_array_equal(raw["fractions"][0], expected)


def test_blank_lines_are_skipped_however_many_and_lines_of_empty_cells_count_toward_the_limit():
    """Issue 34: 16 MB of newlines after one row took 7-11 s (the csv reader and the row filter, in
    Python, much of it on the event loop); runs of blank lines are now collapsed first."""
    from api.batch.io import csv_job
    from api.prediction.schemas import BatchOptions

    header = b"SiC,sintering_temperature\n"
    spaced = b"\n \n" + header + b"\r\n\r\n1.0,1800\n\t\n\n\n1.0,1900\r\n" + b"\n" * 2_000_000
    job = csv_job(spaced, BatchOptions(), max_rows=3)
    rows = [block.raw(i) for block in job.blocks(8) for i in range(len(block))]
    assert [(r.row, r.material["processing"]["sintering_temperature"]) for r in rows] == [(0, 1800.0), (1, 1900.0)]
    with pytest.raises(ApiError) as refused:
        csv_job(header + b",\n" * 4, BatchOptions(), max_rows=3)
    assert refused.value.status == 413
