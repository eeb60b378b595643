"""client/design.py and `python -m client design` against the in-process app: progress events as the
search runs, the front written as CSV, a failure after the stream started raised."""

from __future__ import annotations

import csv
import io
import json
from functools import partial

import pytest

from client import ArmorClient, ServiceError
from client.design import rows, run_design, write_csv
from tests.test_api_design_routes import SPEC


@pytest.fixture
def armor(client) -> ArmorClient:
    return ArmorClient("http://testserver", transport=client._transport, sleep=lambda s: None)


def test_progress_arrives_per_generation_and_the_answer_last(armor):
    seen: list[dict] = []
    answer = run_design(armor, SPEC, seen.append)
    assert len(seen) >= 2 and seen[-1]["evaluations"] == SPEC["max_evaluations"] == answer["summary"]["evaluations"]
    assert answer["front"]


def test_the_csv_has_a_row_per_front_entry_with_inputs_and_intervals(armor):
    answer = run_design(armor, SPEC)
    out = io.StringIO()
    assert write_csv(answer, out, digits=0) == len(answer["front"])
    written = list(csv.DictReader(io.StringIO(out.getvalue())))
    for row, entry in zip(written, answer["front"], strict=True):
        assert row["kind"] == "front"
        assert float(row["processing.sintering_temperature"]) == entry["request"]["processing"]["sintering_temperature"]
        assert float(row["density_high"]) == entry["predictions"]["density"]["confidence_interval"][1]
        assert float(row["v50_velocity"]) == entry["predictions"]["v50_velocity"]["value"]


def test_an_infeasible_answer_writes_the_closest_with_their_violations():
    entry = {"request": {"composition": {"SiC": 1.0}}, "predictions": {}, "warnings": []}
    answer = {"front": [], "closest": [entry | {"violations": [{"constraint": "density <= 1", "violation": 2.2}]}]}
    assert rows(answer) == [
        {
            "kind": "closest",
            "rank": 1,
            "composition.SiC": 1.0,
            "out_of_domain": None,
            "violations": "density <= 1 (off by 2.2)",
            "warnings": "",
        }
    ]


def test_a_refused_spec_is_a_service_error_naming_the_field(armor):
    with pytest.raises(ServiceError) as refused:
        run_design(armor, {**SPEC, "max_evaluations": 10**9})
    assert refused.value.status == 422 and refused.value.body["error"]["details"][0]["field"] == "max_evaluations"


def test_the_command_writes_the_front(client, monkeypatch, tmp_path):
    import client.__main__ as cli

    monkeypatch.setattr(cli, "ArmorClient", partial(ArmorClient, transport=client._transport, sleep=lambda s: None))
    spec, out = tmp_path / "spec.json", tmp_path / "front.csv"
    spec.write_text(json.dumps(SPEC))
    assert cli.main(["design", str(spec), "-o", str(out), "--no-progress", "--url", "http://testserver"]) == 0
    written = list(csv.DictReader(out.open()))
    assert written and {r["kind"] for r in written} == {"front"}
