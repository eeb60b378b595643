"""api/batch/flow.py and its routes in-process: row-level errors, order, equality with the single route,
chunked runner calls, the formats (JSON, CSV, NDJSON, gzip), the limits, runner failures."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.batch.io import csv_columns
from features.catalogue import TARGETS
from settings import BatchRouteSettings
from tests.support import CountingRunner, example

FLAGS = ("include_uncertainty", "include_feature_importance", "model_version")
MATERIAL = {k: v for k, v in example().items() if k not in FLAGS}
CSV_HEADER = "SiC,B4C,Al2O3,sintering_temperature,pressure,grain_size,porosity,atmosphere,threat"


def material(i: int) -> dict:
    """A distinct valid material per ``i``."""
    return {**MATERIAL, "processing": {**MATERIAL["processing"], "sintering_temperature": 1300 + i}}


def csv_line(i: int) -> str:
    return f"0.6,0.3,0.1,{1300 + i},50,10,0.02,argon,7.62x51_m80"


def invalid(field: str, message: str) -> dict:
    details = [{"field": field, "message": message}]
    return {
        "status": 422,
        "type": "validation_error",
        "message": f"invalid request: {field}: {message}",
        "details": details,
    }


def batch_client(make_core, runners=None, limits=BatchRouteSettings(), **overrides) -> TestClient:
    core = make_core(runners=runners, **overrides)
    test_client = TestClient(create_app(lambda: core, 65536, limits))
    test_client.core = core
    return test_client


def post(client, family: str, **kwargs):
    return client.post(f"/api/v1/predict/{family}/batch", **kwargs)


MIXED = [
    material(0),
    {**MATERIAL, "composition": {"SiC": 1.5}},
    material(2),
    {**MATERIAL, "processing": {**MATERIAL["processing"], "grain_size": 500}},
    {**material(4), "include_uncertainty": False},
    42,
    material(6),
]
MIXED_ERRORS = {
    1: invalid("composition.SiC", "must be between 0 and 1 (fraction), got 1.5"),
    3: invalid("processing.grain_size", "must be between 0.1 and 100 um, got 500"),
    4: invalid("include_uncertainty", "set for the whole batch (top level or query string), not per material"),
    5: {
        "status": 422,
        "type": "validation_error",
        "message": "a material is a JSON object, got int",
        "details": [{"field": "(material)", "message": "a material is a JSON object, got int"}],
    },
}


def test_json_mixed_rows_each_get_their_result_or_their_exact_error_in_order(client):
    response = post(client, "mechanical", json={"materials": MIXED})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["row"] for r in body["results"]] == list(range(len(MIXED)))
    for result in body["results"]:
        if result["row"] in MIXED_ERRORS:
            assert result == {"row": result["row"], "error": MIXED_ERRORS[result["row"]]}
        else:
            assert set(result["predictions"]) == set(TARGETS["mechanical"])
    summary = body["summary"]
    assert (summary["rows"], summary["predicted"], summary["errors"], summary["returned"]) == (7, 3, 4, 7)
    assert list(summary["models"]) == [body["results"][0]["model_version"]]


@pytest.mark.parametrize("family", ["mechanical", "ballistic"])
@pytest.mark.parametrize("importance", [False, True])
def test_a_row_equals_the_single_route_answer_for_its_material(client, family, importance):
    materials = [material(i) for i in range(3)] + [{**MATERIAL, "microstructure": {"porosity": 0.29}}]
    flags = {"include_feature_importance": importance}
    body = post(client, family, json={"materials": materials, **flags}).json()
    for row, result in zip(materials, body["results"], strict=True):
        single = client.post(f"/api/v1/predict/{family}", json={**row, **flags}).json()
        info = single["model_info"]
        assert result["model_version"] == f"{info['name']}:{info['version']}"
        assert body["summary"]["models"][result["model_version"]] == info
        for key in ("predictions", "warnings", "feature_importance", "contribution_base"):
            assert result[key] == single[key], key
        assert result.get("build") == single.get("build") and ("build" in single) == (family == "ballistic")


def test_a_row_answered_by_the_single_route_before_comes_from_the_response_cache(client):
    single = client.post("/api/v1/predict/ballistic", json={**material(1), "include_feature_importance": False})
    body = post(client, "ballistic", json={"materials": [material(0), material(1)]}).json()
    assert [r["cached"] for r in body["results"]] == [False, True]
    assert body["results"][1]["predictions"] == single.json()["predictions"]
    assert body["results"][1]["build"] == single.json()["build"]
    assert body["summary"]["cached"] == 1


def test_rows_reach_the_runner_in_chunks_of_max_batch_size(make_core, runner_cores):
    counting = CountingRunner(runner_cores["mechanical"], delay_s=0)
    client = batch_client(make_core, runners={"mechanical": counting}, max_batch_size=16)
    materials = [material(i) for i in range(100)]
    body = post(client, "mechanical", json={"materials": materials}).json()
    assert counting.calls == 7  # ceil(100 / 16)
    assert client.core.predictor.coalescer.rows == 100
    assert [r["row"] for r in body["results"]] == list(range(100))


def test_csv_in_and_out_with_bad_rows(client):
    lines = [
        CSV_HEADER,
        csv_line(0),
        "0.6,0.3,0.1,abc,50,10,0.02,argon,7.62x51_m80",  # not a number
        "0.6,0.3,0.1,1800,50,10,0.5,argon,7.62x51_m80",  # porosity out of range
        "",  # blank: skipped, not counted
        "0.6,0.3,0.1,,50,10,0.02,argon,7.62x51_m80",  # required cell empty
        "0.6,0.3,0.1,1800,50,10,0.02,argon,7.62x51_m80,extra",  # a cell too many
        "0.6,0.3,0.1,1800,50,10,0.02,plasma,7.62x51_m80",  # unknown level
        csv_line(6),
    ]
    response = post(
        client, "ballistic", content="\n".join(lines), headers={"content-type": "text/csv", "accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == csv_columns(TARGETS["ballistic"])
    assert [r["row"] for r in rows] == [str(i) for i in range(7)]
    assert [r["status"] for r in rows] == ["200", "422", "422", "422", "422", "422", "200"]
    messages = [r["error"] for r in rows]
    assert messages[1] == "invalid request: processing.sintering_temperature: must be a number, got 'abc'"
    assert (
        messages[2] == "invalid request: microstructure.porosity: must be between 0 and 0.3 (volume fraction), got 0.5"
    )
    assert messages[3] == "invalid request: processing.sintering_temperature: field required"
    assert messages[4] == "invalid request: (row): 10 cells, the header has 9"
    assert messages[5].startswith("invalid request: processing.atmosphere: Input should be 'air', 'argon'")
    json_rows = post(client, "ballistic", json={"materials": [material(0)]}).json()["results"]
    assert float(rows[0]["v50_velocity"]) == json_rows[0]["predictions"]["v50_velocity"]["value"]
    low, high = json_rows[0]["predictions"]["v50_velocity"]["confidence_interval"]
    assert (float(rows[0]["v50_velocity_low"]), float(rows[0]["v50_velocity_high"])) == (low, high)
    build = json_rows[0]["build"]
    assert float(rows[0]["areal_density"]) == build["areal_density"]["value"]
    assert float(rows[0]["v50_margin"]) == build["v50_margin"]["value"]


def test_csv_row_equals_the_json_row_of_the_same_material(client):
    text = "\n".join([CSV_HEADER, csv_line(3)])
    from_csv = post(client, "mechanical", content=text, headers={"content-type": "text/csv"}).json()["results"][0]
    composition = {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1}
    processing = {"sintering_temperature": 1303, "pressure": 50, "grain_size": 10}
    as_json = {"composition": composition, "processing": processing, "microstructure": {"porosity": 0.02}}
    from_json = post(client, "mechanical", json={"materials": [as_json]}).json()["results"][0]
    assert from_csv["predictions"] == from_json["predictions"] and from_csv["warnings"] == from_json["warnings"]


@pytest.mark.parametrize(
    "header, message",
    [
        ("SiC,sintering_temperature,colour", "unknown column(s) ['colour']; known: "),
        ("SiC,pressure", "missing required column(s) ['sintering_temperature']"),
        ("SiC,SiC,sintering_temperature", "column(s) ['SiC'] given more than once"),
    ],
)
def test_a_bad_csv_header_fails_the_whole_request_naming_the_columns(client, header, message):
    response = post(client, "mechanical", content=f"{header}\n1,1800\n", headers={"content-type": "text/csv"})
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["field"] == "columns" and detail["message"].startswith(message)


def test_reference_table_columns_are_accepted_and_targets_ignored(client):
    with open("data/reference_materials.csv") as handle:
        text = "".join(handle.readline() for _ in range(21))
    body = post(client, "ballistic", content=text, headers={"content-type": "text/csv"}).json()
    assert body["summary"]["rows"] == 20 and body["summary"]["errors"] == 0


def test_csv_options_come_from_the_query_string(client):
    text = "\n".join([CSV_HEADER, csv_line(0)])
    url = "/api/v1/predict/mechanical/batch?include_uncertainty=false&include_feature_importance=true"
    result = client.post(url, content=text, headers={"content-type": "text/csv"}).json()["results"][0]
    assert result["predictions"]["density"]["confidence_interval"] is None
    assert result["feature_importance"] is not None
    bad = client.post(url + "&colour=red", content=text, headers={"content-type": "text/csv"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "colour"


def test_gzip_out_when_accepted_and_gzip_in(client):
    materials = [material(i) for i in range(5)]
    plain = post(client, "mechanical", json={"materials": materials}).json()
    raw = gzip.compress(json.dumps({"materials": materials}).encode())
    headers = {"content-type": "application/json", "content-encoding": "gzip", "accept-encoding": "gzip"}
    response = post(client, "mechanical", content=raw, headers=headers)
    assert response.headers["content-encoding"] == "gzip"
    body = response.json()  # httpx inflates what the header announces
    assert [r["predictions"] for r in body["results"]] == [r["predictions"] for r in plain["results"]]
    no_gzip = post(client, "mechanical", json={"materials": materials}, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in no_gzip.headers


def test_ndjson_is_streamed_one_message_per_chunk(make_core):
    """The ASGI app sends each chunk's lines as soon as it is done (a body message per chunk)."""
    core = make_core(max_batch_size=8)
    app = create_app(lambda: core, 65536)
    body = json.dumps({"materials": [material(i) for i in range(40)]}).encode()
    sent: list[dict] = []

    async def call() -> None:
        received = iter([{"type": "http.request", "body": body, "more_body": False}])
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/predict/mechanical/batch",
            "raw_path": b"/api/v1/predict/mechanical/batch",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"accept", b"application/x-ndjson")],
        }

        async def receive():
            message = next(received, None)
            if message is None:  # the client stays connected: wait for the response's end
                await asyncio.Event().wait()
            return message

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)

    asyncio.run(call())
    pieces = [m["body"] for m in sent if m["type"] == "http.response.body" and m.get("body")]
    assert len(pieces) >= 5  # 40 rows in chunks of 8
    lines = [json.loads(line) for line in b"".join(pieces).splitlines()]
    assert [line["row"] for line in lines[:-1]] == list(range(40))
    assert lines[-1]["summary"]["predicted"] == 40
    assert dict(sent[0]["headers"])[b"content-type"] == b"application/x-ndjson"


def test_more_rows_than_max_batch_rows_is_413_naming_the_limit(make_core):
    client = batch_client(make_core, limits=BatchRouteSettings(max_rows=3))
    response = post(client, "mechanical", json={"materials": [material(i) for i in range(4)]})
    assert response.status_code == 413
    assert response.json()["error"] == {
        "status": 413,
        "type": "body_too_large",
        "message": "more than 3 materials in one batch, over the limit (MAX_BATCH_ROWS)",
    }
    text = "\n".join([CSV_HEADER, *(csv_line(i) for i in range(4))]) + "\n"
    assert post(client, "mechanical", content=text, headers={"content-type": "text/csv"}).status_code == 413
    text = "\n".join([CSV_HEADER, *(csv_line(i) for i in range(3))]) + "\n"
    assert post(client, "mechanical", content=text, headers={"content-type": "text/csv"}).status_code == 200


def test_batch_routes_have_their_own_body_cap(make_core):
    client = batch_client(make_core, limits=BatchRouteSettings(max_request_bytes=200_000))
    materials = [material(i) for i in range(300)]  # ~100 kB: over MAX_REQUEST_BYTES, under the batch cap
    assert len(json.dumps({"materials": materials})) > 65536
    assert post(client, "mechanical", json={"materials": materials}).status_code == 200
    over = post(client, "mechanical", json={"materials": materials * 3})
    assert over.status_code == 413
    assert over.json()["error"]["message"] == "request body over the limit of 200000 bytes"
    single = client.post(
        "/api/v1/predict/mechanical", content=b"x" * 70_000, headers={"content-type": "application/json"}
    )
    assert single.status_code == 413  # the single routes keep MAX_REQUEST_BYTES


@pytest.mark.parametrize(
    "kwargs, status, kind",
    [
        ({"content": b"SiC\n1", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, "malformed_body"),
        ({"json": {"materials": {}}}, 400, "malformed_body"),
        ({"json": {"materials": [], "top": 0}}, 422, "validation_error"),
        ({"json": {"materials": [], "model_version": "nope"}}, 404, "unknown_model_version"),
    ],
)
def test_request_level_errors(client, kwargs, status, kind):
    response = post(client, "mechanical", **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == kind


class Down:
    async def predict(self, rows, version, kind):
        raise TimeoutError

    def __init__(self, real):
        self.real = real

    async def card(self, version=None):
        return await self.real.card(version)


def test_runner_down_before_anything_is_sent_is_a_503_with_retry_after(make_core, runner_cores):
    from runners.local import LocalRunnerClient

    client = batch_client(make_core, runners={"mechanical": Down(LocalRunnerClient(runner_cores["mechanical"]))})
    response = post(client, "mechanical", json={"materials": [material(0)]})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["type"] == "unavailable"


def test_runner_failing_mid_batch_gives_the_remaining_rows_a_503_error(make_core, runner_cores):
    class FailsAfterFirst(CountingRunner):
        async def predict(self, rows, version, kind):
            if self.calls >= 1:
                self.calls += 1
                raise TimeoutError
            return await super().predict(rows, version, kind)

    failing = FailsAfterFirst(runner_cores["mechanical"], delay_s=0)
    client = batch_client(make_core, runners={"mechanical": failing}, max_batch_size=4)
    body = post(client, "mechanical", json={"materials": [material(i) for i in range(12)]}).json()
    statuses = [r.get("error", {}).get("status", 200) for r in body["results"]]
    assert statuses == [200] * 4 + [503] * 8
    assert failing.calls == 2  # no call after the failure
    assert (body["summary"]["predicted"], body["summary"]["errors"]) == (4, 8)


def test_a_bare_carriage_return_ends_a_csv_row_and_an_unreadable_cell_is_a_400(client):
    """A bare \\r in an unquoted cell was a csv.Error, a 500 (found by tests/test_fuzz_api.py)."""
    text = "\r".join([CSV_HEADER, csv_line(0), csv_line(1)]) + "\r"
    body = post(client, "mechanical", content=text, headers={"content-type": "text/csv"}).json()
    assert (body["summary"]["rows"], body["summary"]["errors"]) == (2, 0)
    over_field_limit = f"{CSV_HEADER}\n{'1' * 200_000},0.3\n"  # the csv module reads cells up to 128 KiB
    response = post(client, "mechanical", content=over_field_limit, headers={"content-type": "text/csv"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "malformed_body"


# ---- the column path: CSV rows validated, keyed and answered as arrays


def test_canonical_materials_of_columns_equal_the_single_routes_canonical_forms():
    import numpy as np

    from api.prediction.keys import canonical_material, canonical_materials
    from api.prediction.schemas import PredictionRequest
    from features.batch import MaterialBatch, material_columns

    bodies = [
        material(0),
        {**MATERIAL, "composition": {"WC": 0.5, "SiC": 0.5, "basis": "weight"}},
        {**MATERIAL, "composition": {"SiC": 0.333333333333, "B4C": 0.666666666667}},
        {**MATERIAL, "microstructure": {"porosity": -0.0, "pore_size": 12.3456789012345}},
        {**MATERIAL, "armor": {"tile_thickness": 7.0, "threat": "30-06_m2ap"}},
    ]
    requests = [PredictionRequest.model_validate(b) for b in bodies]
    columns = material_columns(requests)
    volume = MaterialBatch.from_columns(columns).volume_fractions
    for family in ("mechanical", "ballistic"):
        together = canonical_materials(family, columns, volume)
        apart = [canonical_material(r, family) for r in requests]
        assert [json.dumps(m, sort_keys=True) for m in together] == [json.dumps(m, sort_keys=True) for m in apart]
        assert [list(m["composition"]) for m in together] == [list(m["composition"]) for m in apart]  # order kept
    assert np.signbit(canonical_materials("mechanical", columns, volume)[3]["microstructure"]["porosity"])


def test_a_csv_row_is_answered_from_the_single_routes_cache_entry(client):
    single = client.post("/api/v1/predict/ballistic", json={**material(5), "include_feature_importance": False})
    text = "\n".join([CSV_HEADER, csv_line(4), csv_line(5)])
    body = post(client, "ballistic", content=text, headers={"content-type": "text/csv"}).json()
    assert [r["cached"] for r in body["results"]] == [False, True]
    assert body["results"][1]["predictions"] == single.json()["predictions"]


@pytest.mark.parametrize(
    "fractions, error",
    [
        ("0.6,0.4099999999,0", None),  # 1 + 0.0099999999: within the tolerance, at its edge
        ("0.6,0.4100001,0", "phase fractions must sum to 1 +- 0.01, they sum to 1.0100"),
    ],
)
def test_fractions_at_the_edge_of_the_sum_tolerance_are_judged_by_the_request_schema(client, fractions, error):
    text = "\n".join([CSV_HEADER, f"{fractions},1800,50,10,0.02,argon,7.62x51_m80"])
    result = post(client, "mechanical", content=text, headers={"content-type": "text/csv"}).json()["results"][0]
    if error is None:
        composition = dict(zip(("SiC", "B4C"), map(float, fractions.split(",")[:2]), strict=True))
        as_json = {"composition": composition, "processing": {"sintering_temperature": 1800, "pressure": 50}}
        single = client.post("/api/v1/predict/mechanical", json={**as_json, "include_feature_importance": False})
        assert result["predictions"] == single.json()["predictions"]
    else:
        assert result["error"] == invalid("composition", error)


def test_a_csv_row_on_a_backing_outside_the_ballistic_models_gets_the_single_routes_refusal(client):
    text = "\n".join([CSV_HEADER + ",backing", csv_line(0) + ",aramid_laminate", csv_line(1) + ","])
    rows = post(client, "ballistic", content=text, headers={"content-type": "text/csv"}).json()["results"]
    single = client.post(
        "/api/v1/predict/ballistic", json={**material(0), "armor": {"backing": "aramid_laminate"}}
    ).json()
    assert rows[0]["error"] == single["error"] and "predictions" in rows[1]


def test_a_csv_of_several_blocks_keeps_order_errors_and_chunked_runner_calls(make_core, runner_cores):
    from api.batch.flow import BLOCK_ROWS

    counting = CountingRunner(runner_cores["mechanical"], delay_s=0)
    client = batch_client(make_core, runners={"mechanical": counting}, max_batch_size=64)
    rows = 2 * BLOCK_ROWS + 100
    bad = {7: "abc", BLOCK_ROWS - 1: "99999", BLOCK_ROWS: "", rows - 1: "hot"}
    lines = [csv_line(i) if i not in bad else csv_line(i).replace(str(1300 + i), bad[i]) for i in range(rows)]
    text = "\n".join([CSV_HEADER, *lines])
    body = post(client, "mechanical", content=text, headers={"content-type": "text/csv", "accept": "text/csv"})
    out = list(csv.DictReader(io.StringIO(body.text)))
    assert [int(r["row"]) for r in out] == list(range(rows))
    assert [int(r["row"]) for r in out if r["status"] != "200"] == sorted(bad)
    assert out[BLOCK_ROWS]["error"] == "invalid request: processing.sintering_temperature: field required"
    assert counting.calls == -(-rows // 64)
    assert counting.uncached == counting.calls  # a screen's rows go past the runner's prediction cache
    assert client.core.feature_cache.cache.stats().cache_size == rows - len(bad)


def test_the_feature_cache_serves_rows_seen_before(client):
    text = "\n".join([CSV_HEADER, *(csv_line(i) for i in range(5))])
    first = post(client, "mechanical", content=text, headers={"content-type": "text/csv"}).json()
    hits = client.core.feature_cache.cache.stats().hits
    second = post(client, "mechanical", content=text, headers={"content-type": "text/csv"}).json()
    assert client.core.feature_cache.cache.stats().hits == hits + 5
    assert [r["predictions"] for r in first["results"]] == [r["predictions"] for r in second["results"]]


def test_a_row_answered_from_the_response_cache_is_the_askers_own(make_core):
    """No cross-talk (issue 34): a row found in the cache a single request filled (same key, other
    text) equals the row a service that never saw that request gives, but for ``cached``."""
    shared, fresh = batch_client(make_core), batch_client(make_core)
    first = {**MATERIAL, "composition": {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1}}
    second = {**MATERIAL, "composition": {"Al2O3": 0.1, "B4C": 0.3, "SiC": 0.6, "WC": 0.0}, "armor": {}}
    for family in ("mechanical", "ballistic"):
        assert shared.post(f"/api/v1/predict/{family}", json=first).status_code == 200
        [row] = post(shared, family, json={"materials": [second]}).json()["results"]
        [alone] = post(fresh, family, json={"materials": [second]}).json()["results"]
        assert (row.pop("cached"), alone.pop("cached")) == (True, False)
        assert row == alone


def test_model_version_is_read_alike_on_the_single_the_hardness_and_the_batch_routes(client, stored_tags):
    """Issue 34: "armor_mechanical:latest\\n" was accepted on the single route and refused on /batch."""
    for given in ("armor_mechanical:latest\n", f" {stored_tags['mechanical']}\t"):
        single = client.post("/api/v1/predict/mechanical", json={**example(), "model_version": given})
        batch = post(client, "mechanical", json={"materials": [MATERIAL], "model_version": given})
        assert (single.status_code, batch.status_code) == (200, 200), (given, batch.text[:300])
        info = single.json()["model_info"]
        assert batch.json()["results"][0]["model_version"] == f"{info['name']}:{info['version']}"
    hardness = client.post("/api/v1/predict/hardness", json={"formula": "SiC", "model_version": "latest\n"})
    assert hardness.status_code == 200, hardness.text[:300]


def test_a_batch_body_is_decoded_off_the_event_loop_within_the_request_deadline(make_core, monkeypatch):
    """Issue 34: decoding held the event loop (152 s for a wide header) and the deadline could not
    fire. The decoding now runs on the core's own thread; a deadline passing meanwhile is a 504."""
    import threading
    import time

    import api.batch.routes as routes
    from api.transport.deadline import ResponseDeadline

    decoded_on: list[str] = []
    real = routes.decode_job

    def slow_decode(*args):
        decoded_on.append(threading.current_thread().name)
        time.sleep(0.5)  # a body that takes long to decode
        return real(*args)

    monkeypatch.setattr(routes, "decode_job", slow_decode)
    core = make_core()
    app = ResponseDeadline(create_app(lambda: core, 65536), timeout_s=0.2)
    with TestClient(app) as http:
        late = post(http, "mechanical", json={"materials": [MATERIAL]})
    assert late.status_code == 504 and late.json()["error"]["type"] == "timeout"
    assert decoded_on and decoded_on[0].startswith("batch-decode")


def test_a_material_of_made_up_fields_is_refused_by_its_size_and_where_is_bounded(client):
    """Issue 34: 300,000 made-up fields in one material cost 8 s of validation and a 50 MB message;
    ``where`` constraints are checked on every row, so their number is capped."""
    from api.batch.flow import MOST_FIELDS

    crowded = {**MATERIAL, **{f"x{i}": 1 for i in range(50_000)}}
    processing = {**MATERIAL["processing"], **{f"y{i}": 1 for i in range(MOST_FIELDS)}}
    rows = post(client, "mechanical", json={"materials": [crowded, {**MATERIAL, "processing": processing}, MATERIAL]})
    first, second, third = rows.json()["results"]
    assert first["error"]["details"] == [
        {"field": "(material)", "message": f"{len(crowded)} fields, more than any part of a material has (11)"}
    ]
    assert second["error"]["details"][0]["field"] == "processing" and "predictions" in third
    many = post(client, "mechanical", json={"materials": [MATERIAL], "where": ["density <= 3.3"] * 33})
    assert many.status_code == 422 and many.json()["error"]["details"][0]["field"] == "where"
