"""Every bad input in tests/testdata/bad_requests.json gets its 4xx and the exact message."""

import json
from pathlib import Path

import pytest

CASES = json.loads((Path(__file__).parent / "testdata" / "bad_requests.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("family", ["mechanical", "ballistic"])
def test_bad_input_gets_4xx_naming_the_problem(client, case, family):
    url = f"/api/v1/predict/{family}"
    headers = {"content-type": "application/json"}
    if "raw" in case:
        response = client.post(url, content=case["raw"], headers=headers)
    else:
        response = client.post(url, json=case["body"])
    assert response.status_code == case["status"], response.text
    error = response.json()["error"]
    assert error["status"] == case["status"]
    if "field" in case:
        assert {"field": case["field"], "message": case["message"]} in error["details"]
        assert case["field"] in error["message"]
    else:
        assert error == {"status": case["status"], "type": case["type"], "message": case["message"]}


def test_body_over_limit_is_413(client):
    response = client.post(
        "/api/v1/predict/mechanical", content=b"{" + b" " * 70000 + b"}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "request body over the limit of 65536 bytes"


def test_unknown_model_version_is_404_listing_available(client, stored_tags):
    body = {"composition": {"SiC": 1.0}, "processing": {"sintering_temperature": 1800}, "model_version": "nope"}
    response = client.post("/api/v1/predict/mechanical", json=body)
    assert response.status_code == 404
    error = response.json()["error"]
    assert stored_tags["mechanical"] in error["available"]
    assert stored_tags["mechanical"] in error["message"]


def test_chunked_body_over_limit_is_413(client):
    def chunks():
        yield b'{"composition": {"SiC": 1.0}, "pad": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    response = client.post("/api/v1/predict/mechanical", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "body_too_large"


def test_get_routes_answer_failures_with_the_json_error_body(make_core):
    import aiohttp
    from fastapi.testclient import TestClient

    from api.app import create_app

    class Down:
        async def predict(self, rows, version, kind):
            raise aiohttp.ClientConnectionError("connection refused")

        async def card(self, version=None):
            raise aiohttp.ClientConnectionError("connection refused")

    core = make_core(runners={"mechanical": Down()})

    async def broken_status():
        raise RuntimeError("boom")

    core.status = broken_status
    with TestClient(create_app(lambda: core, 65536), raise_server_exceptions=False) as http:
        models = http.get("/api/v1/models")
        status = http.get("/api/v1/status")
        missing = http.get("/api/v1/nothing-here")
        wrong_method = http.get("/api/v1/predict/mechanical")
    assert models.status_code == 503 and models.json()["error"]["type"] == "unavailable"
    assert models.headers["retry-after"] == "1"
    assert status.status_code == 500 and status.json() == {
        "error": {"status": 500, "type": "internal_error", "message": "internal error; see the service log"},
        "request_id": status.headers["x-request-id"],
    }
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["type"] == "method_not_allowed"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"composition": {"SiC": True}}, "composition.SiC"),
        ({"processing": {"sintering_temperature": "1800"}}, "processing.sintering_temperature"),
        ({"include_uncertainty": "yes"}, "include_uncertainty"),
        ({"microstructure": {"porosity": "0.02"}}, "microstructure.porosity"),
    ],
)
def test_no_type_coercion_a_string_or_bool_is_not_a_number(client, change, field):
    body = {"composition": {"SiC": 1.0}, "processing": {"sintering_temperature": 1800}, **change}
    response = client.post("/api/v1/predict/mechanical", json=body)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["error"]["details"]]


def test_an_integer_is_still_a_number(client):
    body = {"composition": {"SiC": 1}, "processing": {"sintering_temperature": 1800, "pressure": 50}}
    assert client.post("/api/v1/predict/mechanical", json=body).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":' * 10000 + b"1" + b"}" * 10000,
        b'{"composition": "\xff\xfe"}',
        b'{"composition": {"SiC": 1' + b"0" * 5000 + b"}}",
    ],
)
def test_unparseable_bodies_get_the_documented_400_body(client, raw):
    response = client.post("/api/v1/predict/mechanical", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "malformed_body"


def test_the_openapi_document_lists_every_status_of_the_prediction_routes_with_the_real_error_body():
    from api.app import create_app

    doc = create_app(lambda: None, 65536).openapi()
    for family in ("mechanical", "ballistic"):
        responses = doc["paths"][f"/api/v1/predict/{family}"]["post"]["responses"]
        assert {"200", "400", "404", "413", "422", "500", "503"} <= set(responses)
        error_body = {"$ref": "#/components/schemas/ErrorBody"}
        for status in ("400", "404", "413", "422", "500", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == error_body
    assert doc["components"]["schemas"]["Composition"]["minProperties"] == 1  # "composition": {} is refused


def test_a_key_given_twice_is_a_400_naming_it(client):
    raw = b'{"composition": {"SiC": 1.0, "SiC": 0.5}, "processing": {"sintering_temperature": 1800}}'
    response = client.post("/api/v1/predict/mechanical", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "duplicate key 'SiC'" in response.json()["error"]["message"]


def test_unknown_model_version_lists_nothing_without_the_admin_token(make_core, stored_tags):
    """Issue 34: ADMIN_TOKEN hides the stored versions on /api/v1/models; the 404 must too, on the
    single and the batch routes."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    core = make_core(admin_token="s3cret")
    body = {"composition": {"SiC": 1.0}, "processing": {"sintering_temperature": 1800}, "model_version": "nope"}
    batch = {"materials": [{k: v for k, v in body.items() if k != "model_version"}], "model_version": "nope"}
    with TestClient(create_app(lambda: core, 65536)) as http:
        for path, sent in (("/api/v1/predict/mechanical", body), ("/api/v1/predict/mechanical/batch", batch)):
            anyone = http.post(path, json=sent)
            admin = http.post(path, json=sent, headers={"Authorization": "bearer s3cret"})
            assert (anyone.status_code, admin.status_code) == (404, 404)
            assert "available" not in anyone.json()["error"], path
            assert stored_tags["mechanical"] not in anyone.text, path
            assert anyone.json()["error"]["type"] == "unknown_model_version"
            assert stored_tags["mechanical"] in admin.json()["error"]["available"], path


@pytest.mark.parametrize(
    "raw, says",
    [
        (b'{"composition": {"SiC": 1.0}, "processing": {"sintering_temperature": 18\xff00}}', "not valid UTF-8"),
        (
            b'{"composition": {"SiC": 1.0}, "processing": {"sintering_temperature": ' + b"1" * 5000 + b"}}",
            "4,300 digits",
        ),
        (b'{"composition": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested too deep"),
        (b'{"composition": {"SiC": 1.0}, "composition": {}}', "duplicate key 'composition'"),
    ],
)
def test_unreadable_json_is_a_400_saying_what_is_wrong_on_single_and_batch_routes(client, raw, says):
    """Issue 34: these were 'duplicate key ...' (UTF-8, digits) or a 500 RecursionError (batch)."""
    batch = raw.replace(b'{"composition": ', b'{"materials": [{"composition": ', 1)[:-1] + b"}]}"
    for path, body in (("/api/v1/predict/mechanical", raw), ("/api/v1/predict/mechanical/batch", batch)):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, response.text[:300])
        error = response.json()["error"]
        assert error["type"] == "malformed_body" and says in error["message"], (path, error)
