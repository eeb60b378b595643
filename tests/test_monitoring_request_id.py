"""monitoring/request_id.py: the request's id (given, or new), its traceparent, the header, the
access line for every route, and what BentoML's client carries to the runner."""

import json

import pytest
from opentelemetry import propagate
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from monitoring.logs import REQUEST_ID, TRACEPARENT
from monitoring.request_id import (
    MAX_ID_LENGTH,
    RequestIdentity,
    accepted_id,
    baggage_id,
    carried,
    valid_traceparent,
)

TRACEPARENT_EXAMPLE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "given, accepted",
    [
        (b"abc-123", "abc-123"),
        (b"with space", "with space"),
        (b"x" * MAX_ID_LENGTH, "x" * MAX_ID_LENGTH),
        (b"x" * (MAX_ID_LENGTH + 1), None),
        (b"", None),
        (b"tab\there", None),
        (b"caf\xc3\xa9", None),
        (b"nul\x00", None),
        (None, None),
    ],
)
def test_an_id_is_accepted_only_when_short_and_printable_ascii(given, accepted):
    assert accepted_id(given) == accepted


def test_baggage_request_id_is_read_and_percent_decoded():
    assert baggage_id(b"other=1, request_id=abc%20def;prop=2") == "abc def"
    assert baggage_id(b"other=1") is None and baggage_id(None) is None


@pytest.mark.parametrize(
    "given, valid",
    [
        (TRACEPARENT_EXAMPLE, True),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),  # version ff is invalid
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),  # all-zero trace id
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),  # all-zero parent id
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", False),  # upper case
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", False),
    ],
)
def test_traceparent_follows_w3c_trace_context(given, valid):
    assert (valid_traceparent(given.encode()) == given) is valid


def _app(access_log: bool = False) -> TestClient:
    async def seen(request):
        return PlainTextResponse(f"{REQUEST_ID.get()} {TRACEPARENT.get()}")

    async def fails(request):
        return PlainTextResponse("no", status_code=418)

    app = Starlette(routes=[Route("/seen", seen), Route("/fails", fails, methods=["POST"])])
    return TestClient(RequestIdentity(RequestIdentity(app, access_log), access_log))  # the inner copy: a no-op


def test_the_given_id_is_in_context_and_in_the_response_header():
    response = _app().get("/seen", headers={"X-Request-ID": "client-7", "traceparent": TRACEPARENT_EXAMPLE})
    assert response.text == f"client-7 {TRACEPARENT_EXAMPLE}"
    assert response.headers.get_list("x-request-id") == ["client-7"]  # once, though the middleware is nested


@pytest.mark.parametrize("given", ["x" * (MAX_ID_LENGTH + 1), "bad\x7fid", None])
def test_a_missing_or_unacceptable_id_is_replaced_by_a_new_one(given):
    headers = {} if given is None else {"X-Request-ID": given}
    response = _app().get("/seen", headers=headers)
    made = response.headers["x-request-id"]
    assert made != given and len(made) == 32 and response.text == f"{made} None"


def test_access_line_for_every_route_and_status(caplog_json):
    http = _app(access_log=True)
    http.get("/seen", headers={"X-Request-ID": "a1"})
    http.post("/fails", headers={"X-Request-ID": "a2"})
    http.get("/nowhere", headers={"X-Request-ID": "a3"})
    lines = [json.loads(line) for line in caplog_json.getvalue().splitlines()]
    access = [(line["request_id"], line["method"], line["path"], line["status"]) for line in lines]
    assert access == [("a1", "GET", "/seen", 200), ("a2", "POST", "/fails", 418), ("a3", "GET", "/nowhere", 404)]


def test_no_access_line_when_off(caplog_json):
    _app(access_log=False).get("/seen")
    assert caplog_json.getvalue() == ""


def test_bentoml_clients_propagation_carries_the_id_and_the_traceparent():
    outside: dict[str, str] = {}
    with carried():
        propagate.inject(outside)
    assert "baggage" not in outside  # nothing outside a request
    id_token, trace_token = REQUEST_ID.set("req 1"), TRACEPARENT.set(TRACEPARENT_EXAMPLE)
    try:
        headers: dict[str, str] = {}
        with carried():
            propagate.inject(headers)  # what _bentoml_impl/client/http.py does for every call
    finally:
        REQUEST_ID.reset(id_token)
        TRACEPARENT.reset(trace_token)
    assert baggage_id(headers["baggage"].encode()) == "req 1"
    assert headers["traceparent"] == TRACEPARENT_EXAMPLE
