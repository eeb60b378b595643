"""api/batch/screening.py: constraints, ranking and top K, alone and through a /batch route."""

from __future__ import annotations

import pytest

from api.batch.screening import Screen, constraint
from api.prediction.schemas import BatchOptions
from api.transport.errors import InvalidInput
from features.catalogue import TARGETS
from tests.test_api_batch_flow import material, post


def row(i: int, density: float, hardness: float) -> dict:
    entry = lambda v: {"value": v, "confidence_interval": [v - 0.1, v + 0.1]}  # noqa: E731
    return {"row": i, "predictions": {"density": entry(density), "vickers_hardness": entry(hardness)}}


def screen(**options) -> Screen:
    found = Screen.from_options(BatchOptions(**options), "mechanical")
    assert found is not None
    return found


def offered(s: Screen, rows: list[dict]) -> list[int]:
    for r in rows:
        s.offer(r)
    return [r["row"] for r in s.ranked()]


ROWS = [row(0, 3.2, 20), row(1, 3.5, 30), row(2, 3.0, 25), row(3, 3.1, 25), row(4, 2.9, 10)]


def test_no_options_no_screen():
    assert Screen.from_options(BatchOptions(), "mechanical") is None


def test_where_keeps_input_order_and_counts_matches():
    s = screen(where=["density <= 3.2", "vickers_hardness>=20"])
    assert offered(s, ROWS) == [0, 2, 3] and s.matched == 3


def test_rank_descending_ties_keep_the_earlier_row_and_top_keeps_the_best():
    assert offered(screen(rank_by="vickers_hardness"), ROWS) == [1, 2, 3, 0, 4]
    assert offered(screen(rank_by="vickers_hardness", top=2), ROWS) == [1, 2]
    assert offered(screen(rank_by="density", order="ascending", top=3), ROWS) == [4, 2, 3]


def test_interval_bounds_are_quantities():
    assert offered(screen(rank_by="density_high", where=["density_low < 3.0"]), ROWS) == [2, 4]


@pytest.mark.parametrize(
    "options, field, message",
    [
        ({"rank_by": "v50_velocity"}, "rank_by", "unknown quantity 'v50_velocity'"),
        ({"where": ["density = 3"]}, "where", "'density = 3' is not '<quantity> <op> <number>'"),
        ({"top": 3}, "top", "top needs rank_by"),
        ({"rank_by": "density_low", "include_uncertainty": False}, "rank_by", "'density_low' is an interval bound"),
    ],
)
def test_bad_screening_options_are_422_naming_the_option(options, field, message):
    with pytest.raises(InvalidInput) as refused:
        Screen.from_options(BatchOptions(**options), "mechanical")
    assert refused.value.details[0]["field"] == field
    assert refused.value.details[0]["message"].startswith(message)


def test_constraint_parses_signed_and_exponent_numbers():
    assert constraint("poisson_ratio > -1e-3", TARGETS["mechanical"], True).limit == -0.001


def test_screening_through_the_route_returns_matches_best_first_then_errors(client):
    materials = [material(i * 100) for i in range(8)] + [{"composition": {"SiC": 2.0}}]
    plain = post(client, "mechanical", json={"materials": materials}).json()["results"]
    density = {r["row"]: r["predictions"]["density"]["value"] for r in plain if "error" not in r}
    hardness = {r["row"]: r["predictions"]["vickers_hardness"]["value"] for r in plain if "error" not in r}
    limit = sorted(density.values())[5]
    options = {"rank_by": "vickers_hardness", "where": [f"density <= {limit!r}"], "top": 3}
    body = post(client, "mechanical", json={"materials": materials, **options}).json()
    matched = [i for i in density if density[i] <= limit]
    expected = sorted(matched, key=lambda i: -hardness[i])[:3]
    assert [r["row"] for r in body["results"]] == [*expected, 8]
    assert "error" in body["results"][-1]
    summary = body["summary"]
    assert (summary["rows"], summary["matched"], summary["returned"], summary["errors"]) == (9, len(matched), 4, 1)
    bad = post(client, "mechanical", json={"materials": materials, "rank_by": "colour"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "rank_by"
