"""End-to-end: BentoML's own clients against a real `bentoml serve` (issue 36): the typed endpoints
are listed in /schema.json and give the values of /api/v1/predict/..."""

from __future__ import annotations

import asyncio
import json

import bentoml
import httpx
import pytest

from monitoring.logs import BENTOML_HTTP_LOGGER
from tests.support import BentoServer, example

pytestmark = pytest.mark.e2e
HARDNESS = {"formula": "B4C", "load_n": [0.98, 9.8]}


@pytest.fixture(scope="module")
def served(stored_tags, hardness_tag, bentoml_home):
    server = BentoServer({"BENTOML_HOME": bentoml_home, "API_WORKERS": "1", "PREDICTION_WORKERS": "1"})
    server.start()
    yield server
    server.stop()


def _values(body: dict) -> dict:
    if isinstance(body["predictions"], list):  # hardness: one entry a load
        return {
            p["load_n"]: (p["vickers_hardness"]["value"], p["vickers_hardness"]["confidence_interval"])
            for p in body["predictions"]
        }
    return {t: (e["value"], e["confidence_interval"]) for t, e in body["predictions"].items()}


def test_schema_lists_the_typed_endpoints(served):
    schema = httpx.get(f"{served.url}/schema.json", timeout=10).json()
    names = {route["name"] for route in schema["routes"]}
    assert {
        "predict_mechanical",
        "predict_ballistic",
        "predict_hardness",
        "predict_mechanical_batch",
        "predict_ballistic_batch",
        "models_serving",
    } <= names


@pytest.mark.parametrize(
    ("endpoint", "route", "body"),
    [
        ("predict_mechanical", "mechanical", example()),
        ("predict_ballistic", "ballistic", example()),
        ("predict_hardness", "hardness", HARDNESS),
    ],
)
def test_sync_client_gives_the_values_of_the_route(served, endpoint, route, body):
    expected = httpx.post(f"{served.url}/api/v1/predict/{route}", json=body, timeout=30).json()
    with bentoml.SyncHTTPClient(served.url) as client:
        answer = client.call(endpoint, body)
    assert _values(answer) == _values(expected)


def test_async_client_and_the_model_list(served):
    async def run() -> tuple[dict, dict]:
        async with bentoml.AsyncHTTPClient(served.url) as client:
            return await client.predict_mechanical(example()), await client.models_serving()

    answer, serving = asyncio.run(run())
    assert "vickers_hardness" in answer["predictions"]
    assert serving["mechanical"]["serving"] == answer["model_info"]["name"] + ":" + answer["model_info"]["version"]


def test_batch_through_the_client_gives_the_routes_rows(served):
    material = {k: v for k, v in example().items() if k in ("composition", "processing", "microstructure")}
    body = {"materials": [material, {"composition": {"SiC": 2.0}}]}
    expected = httpx.post(f"{served.url}/api/v1/predict/ballistic/batch", json=body, timeout=60).json()
    with bentoml.SyncHTTPClient(served.url) as client:
        answer = client.predict_ballistic_batch(body)
    assert answer["results"][0]["predictions"] == expected["results"][0]["predictions"]
    assert answer["results"][1]["error"]["status"] == expected["results"][1]["error"]["status"] == 422
    assert answer["summary"]["errors"] == 1


def test_refusals_keep_their_status(served):
    with bentoml.SyncHTTPClient(served.url) as client:
        with pytest.raises(bentoml.exceptions.NotFound):
            client.predict_mechanical(example() | {"model_version": "armor_mechanical:doesnotexist"})
        with pytest.raises(bentoml.exceptions.InvalidArgument):
            client.predict_mechanical(example() | {"composition": {"SiC": 2.0}})


@pytest.mark.parametrize(
    ("change", "status", "kind"),
    [
        ({"model_version": "armor_mechanical:doesnotexist"}, 404, "unknown_model_version"),
        ({"composition": {"SiC": 2.0}}, 400, "validation_error"),
    ],
)
def test_a_refusal_is_the_json_error_body_with_the_request_id(served, change, status, kind):
    """As on /api/v1 (api/transport/bentoml_errors.py); the 404 is the flow's, not "no such path"."""
    given = f"e2e-typed-{status}"
    answer = httpx.post(f"{served.url}/predict_mechanical", json=example() | change, headers={"X-Request-ID": given})
    assert (answer.status_code, answer.json()["error"]["type"]) == (status, kind)
    assert answer.headers["x-request-id"] == answer.json()["request_id"] == given
    # BentoML's own line for it is the refusal's, not an ERROR with a traceback (monitoring/logs.py)
    lines = [json.loads(line) for line in _log_lines(served) if given in line]
    bentoml_lines = [line for line in lines if line["logger"] == BENTOML_HTTP_LOGGER]
    assert [(line["level"], line["status"]) for line in bentoml_lines] == [("INFO", status)]
    assert all("exception" not in line for line in bentoml_lines)


def _log_lines(server: BentoServer) -> list[str]:
    """The serve's JSON lines so far."""
    server.log.flush()
    with open(server.log.name) as written:
        return [line for line in written if line.startswith("{")]


def test_docs_json_is_valid_openapi_31_with_every_route(served):
    from openapi_spec_validator import OpenAPIV31SpecValidator

    document = httpx.get(f"{served.url}/docs.json", timeout=30).json()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] != "None"
    assert [str(error)[:200] for error in OpenAPIV31SpecValidator(document).iter_errors()] == []
    paths = set(document["paths"])
    assert {"/predict_mechanical", "/api/v1/predict/mechanical", "/api/v1/predict/mechanical/batch"} <= paths
    typed = document["paths"]["/predict_mechanical"]["post"]["responses"]
    assert {status: typed[status]["content"]["application/json"]["schema"] for status in ("400", "404", "503")} == {
        status: {"$ref": "#/components/schemas/ErrorBody"} for status in ("400", "404", "503")
    }
    assert "img.shields.io" not in httpx.get(f"{served.url}/docs.json", timeout=30).text
