"""The typed endpoints' error answers are /api/v1's JSON error body with the request's id: BentoML's
own app in-process (its validation, router and error handling), wired as service.py wires it,
with endpoints that call api/transport/bentoml_api.py over an in-process ServiceCore."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import bentoml
import pytest
from _bentoml_impl.server.app import ServiceAppFactory
from starlette.testclient import TestClient

from api.prediction.schemas import BatchRequest, PredictionRequest
from api.transport.bentoml_api import BatchAnswer, PredictionAnswer, batch_answer, material_answer, typed_models
from api.transport.bentoml_errors import TypedErrors, own_error_body, typed_routes
from monitoring.request_id import RequestIdentity
from tests.support import example

UNKNOWN_VERSION = example() | {"model_version": "armor_mechanical:doesnotexist"}
UNAVAILABLE = {
    "status": 503,
    "type": "unavailable",
    "message": "the prediction runner is unavailable or overloaded; retry shortly",
}


class Down:
    """A runner that does not answer within RUNNER_UNAVAILABLE_S."""

    async def predict(self, rows, version, kind):
        raise TimeoutError("the runner did not answer within 5 s")

    async def card(self, version=None):
        raise TimeoutError("the runner did not answer within 5 s")


@contextlib.contextmanager
def typed_client(core: Any) -> Iterator[TestClient]:
    """BentoML's app of a service with service.py's typed endpoints (a few) and middleware over ``core``."""

    @bentoml.service(name="typed_errors")
    class Typed:
        @bentoml.api(route="/predict_mechanical")
        async def predict_mechanical(self, request: PredictionRequest, /) -> PredictionAnswer:
            return await material_answer(core, "mechanical", request)

        @bentoml.api(route="/predict_mechanical_batch")
        async def predict_mechanical_batch(self, request: BatchRequest, /) -> BatchAnswer:
            return await batch_answer(core, "mechanical", request)

        @bentoml.api(route="/models")
        async def models_serving(self) -> dict[str, Any]:
            return await typed_models(core)

    Typed.add_asgi_middleware(RequestIdentity)
    Typed.add_asgi_middleware(TypedErrors, routes=typed_routes(Typed))
    Typed.inject_config()  # what Service.to_asgi does, then its app without its metrics (which register
    # on prometheus' global registry: a second app in the process would be refused)
    with TestClient(ServiceAppFactory(Typed, is_main=True, enable_metrics=False)()) as http:
        yield http


@pytest.fixture
def typed(make_core):
    with typed_client(make_core()) as http:
        yield http


def test_a_body_that_does_not_fit_is_400_with_the_routes_details_and_the_id(typed, client):
    body = {k: v for k, v in example().items() if k != "processing"} | {"composition": {"SiC": 2.0}}
    answer = typed.post("/predict_mechanical", json=body, headers={"X-Request-ID": "typed-1"})
    route = client.post("/api/v1/predict/mechanical", json=body).json()
    assert answer.status_code == 400 and answer.headers["x-request-id"] == "typed-1"
    assert answer.json() == {
        "error": {"status": 400, "type": "validation_error"} | {k: route["error"][k] for k in ("message", "details")},
        "request_id": "typed-1",
    }
    assert [d["field"] for d in answer.json()["error"]["details"]] == ["composition.SiC", "processing"]


def test_an_unknown_model_version_is_the_routes_404(typed, client):
    answer = typed.post("/predict_mechanical", json=UNKNOWN_VERSION, headers={"X-Request-ID": "typed-2"})
    route = client.post("/api/v1/predict/mechanical", json=UNKNOWN_VERSION, headers={"X-Request-ID": "typed-2"})
    assert answer.status_code == route.status_code == 404
    assert answer.headers["x-request-id"] == "typed-2"
    assert answer.json() == route.json()
    assert answer.json()["error"]["type"] == "unknown_model_version" and answer.json()["request_id"] == "typed-2"


def test_a_runner_that_cannot_answer_is_503_with_retry_after_on_every_endpoint(make_core):
    core = make_core(runners={"mechanical": Down(), "ballistic": Down(), "hardness": Down()})
    batch = {"materials": [{k: example()[k] for k in ("composition", "processing")}]}
    with typed_client(core) as http:
        answers = [
            http.post("/predict_mechanical", json=example(), headers={"X-Request-ID": "down-1"}),
            http.post("/predict_mechanical_batch", json=batch, headers={"X-Request-ID": "down-2"}),
            http.post("/models", headers={"X-Request-ID": "down-3"}),
        ]
    for n, answer in enumerate(answers, 1):
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert answer.headers["x-request-id"] == f"down-{n}"
        assert answer.json() == {"error": UNAVAILABLE, "request_id": f"down-{n}"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"composition', "request body is not valid JSON (EOF while parsing a string at line 1 column 13)"),
        (b"[]", "request body must be a non-empty JSON object"),
    ],
)
def test_a_body_that_is_not_an_object_is_malformed(typed, content, expected):
    answer = typed.post("/predict_mechanical", content=content, headers={"Content-Type": "application/json"})
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["type"] == "malformed_body" and error["message"].startswith(expected)
    assert answer.json()["request_id"] == answer.headers["x-request-id"]  # a new id, the same in both


def test_the_routers_405_is_the_json_body_with_allow_kept(typed):
    answer = typed.get("/predict_mechanical", headers={"X-Request-ID": "typed-405"})
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert answer.json() == {
        "error": {"status": 405, "type": "method_not_allowed", "message": "Method Not Allowed"},
        "request_id": "typed-405",
    }


def test_an_answer_passes_untouched_with_the_given_id(typed):
    answer = typed.post("/predict_mechanical", json=example(), headers={"X-Request-ID": "typed-ok"})
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "typed-ok"
    assert answer.json()["request_id"] == "typed-ok" and "vickers_hardness" in answer.json()["predictions"]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            415,
            b'[{"error":"no pickle here"}]',
            {"status": 415, "type": "unsupported_media_type", "message": "no pickle here"},
        ),
        (404, b"Not Found", {"status": 404, "type": "not_found", "message": "Not Found"}),
        (
            500,
            b'{"error":"An unexpected error has occurred"}',
            {"status": 500, "type": "internal_error", "message": "internal error; see the service log"},
        ),
        (418, b'"odd"', {"status": 418, "type": "http_error", "message": "odd"}),
    ],
)
def test_bentomls_other_error_shapes(status, body, expected):
    assert own_error_body(status, body, PredictionRequest) == {"error": expected}  # no request: no id
