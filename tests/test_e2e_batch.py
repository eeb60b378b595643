"""End-to-end: the /batch routes of a real `bentoml serve` (2 API workers, 1 runner worker, memory
backend) through the client: a 10,000-row CSV with 100 malformed rows, gzip and NDJSON over HTTP."""

from __future__ import annotations

import csv
import gzip
import io
import json

import httpx
import pytest

from client import ArmorClient, screen_csv
from loadtests.batch_bench import candidate_rows, candidates_csv
from tests.support import BentoServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(stored_tags, hardness_tag, bentoml_home):
    server = BentoServer({"BENTOML_HOME": bentoml_home, "API_WORKERS": "2", "PREDICTION_WORKERS": "1"})
    server.start()
    yield server
    server.stop()


def test_10000_rows_with_100_malformed_through_the_client(served, tmp_path):
    text, bad_rows = candidates_csv(10_000, seed=3, bad=100)
    out = io.StringIO()
    progress: list[int] = []
    with ArmorClient(served.url) as client:
        summary = screen_csv(client, "mechanical", io.StringIO(text), out, batch_rows=10_000, on_rows=progress.append)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert (summary.rows, summary.predicted, summary.errors) == (10_000, 9_900, 100)
    assert [int(r["row"]) for r in rows] == list(range(10_000)) and len(progress) == 10_000
    assert [int(r["row"]) for r in rows if r["status"] != "200"] == bad_rows
    assert all(r["error"].startswith("invalid request: ") for r in rows if r["status"] != "200")
    print(f"\n10,000 rows through the client: {summary.rows / summary.seconds:,.0f} rows/s")


def test_gzip_ndjson_rows_equal_single_answers(served):
    materials = candidate_rows(20, seed=5)
    body = gzip.compress(json.dumps({"materials": materials}).encode())
    headers = {
        "content-type": "application/json",
        "content-encoding": "gzip",
        "accept": "application/x-ndjson",
        "accept-encoding": "gzip",
    }
    with httpx.stream(
        "POST", f"{served.url}/api/v1/predict/ballistic/batch", content=body, headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
        lines = [json.loads(line) for line in response.iter_lines()]
    assert [line["row"] for line in lines[:-1]] == list(range(20)) and lines[-1]["summary"]["predicted"] == 20
    for material, line in list(zip(materials, lines, strict=False))[:3]:
        single = httpx.post(f"{served.url}/api/v1/predict/ballistic", json=material, timeout=30).json()
        assert line["predictions"] == single["predictions"] and line["warnings"] == single["warnings"]


def test_more_rows_than_max_batch_rows_is_413_over_http(served):
    text, _ = candidates_csv(10_001, seed=4)
    response = httpx.post(
        f"{served.url}/api/v1/predict/mechanical/batch", content=text, headers={"content-type": "text/csv"}, timeout=60
    )
    assert response.status_code == 413
    assert (
        response.json()["error"]["message"] == "more than 10000 materials in one batch, over the limit (MAX_BATCH_ROWS)"
    )
