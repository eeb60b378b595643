"""monitoring/logs.py: one JSON object a line, with the request's id and its trace (the current
OpenTelemetry span's, else the client's traceparent)."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from monitoring.logs import BENTOML_HTTP_LOGGER, REQUEST_ID, TRACEPARENT, JsonFormatter, RefusalFilter

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT_EXAMPLE = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"


def _line(message: str = "hello", **extra: object) -> dict:
    record = logging.LogRecord("armor.test", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))


def test_a_line_outside_a_request_has_neither_id_nor_trace():
    line = _line(family="mechanical")
    assert line["message"] == "hello" and line["family"] == "mechanical"
    assert not {"request_id", "trace_id", "span_id"} & set(line)


def test_a_request_without_a_span_carries_the_clients_trace_id():
    id_token, trace_token = REQUEST_ID.set("logs-1"), TRACEPARENT.set(TRACEPARENT_EXAMPLE)
    try:
        line = _line()
    finally:
        TRACEPARENT.reset(trace_token)
        REQUEST_ID.reset(id_token)
    assert (line["request_id"], line["trace_id"]) == ("logs-1", CLIENT_TRACE)
    assert "span_id" not in line  # the traceparent's parent id is the client's span, not ours


def test_within_a_span_the_line_carries_its_trace_and_span_ids():
    """TRACING on: BentoML's middleware makes the request's span, continuing the client's trace."""
    tracer = TracerProvider().get_tracer("test")  # not the global provider: nothing else sees it
    parent = TraceContextTextMapPropagator().extract({"traceparent": TRACEPARENT_EXAMPLE})
    with tracer.start_as_current_span("request", context=parent) as span:
        line = _line()
    assert line["trace_id"] == CLIENT_TRACE
    assert line["span_id"] == format(span.get_span_context().span_id, "016x") != "00f067aa0ba902b7"


def test_a_span_of_a_new_trace_is_named_without_a_traceparent():
    with TracerProvider().get_tracer("test").start_as_current_span("request") as span:
        line = _line()
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x") != CLIENT_TRACE


def _bentoml_line(exc: BaseException) -> logging.LogRecord:
    """The record BentoML's log_exception writes for ``exc`` raised by a typed endpoint."""
    try:
        raise exc
    except BaseException:
        import sys

        return logging.LogRecord(
            BENTOML_HTTP_LOGGER, logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/x", "POST"), sys.exc_info()
        )


def test_a_typed_endpoints_refusal_is_an_info_line_without_a_traceback():
    from api.transport.bentoml_api import FlowFailure

    record = _bentoml_line(FlowFailure("unknown model version", 404))
    RefusalFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["status"]) == ("INFO", 404) and "exception" not in line
    assert line["message"] == "Exception on /x [POST] refused: 404 unknown model version"


def test_a_runner_unavailable_is_a_warning_and_any_other_exception_stays_an_error_with_its_traceback():
    from bentoml.exceptions import ServiceUnavailable

    unavailable = _bentoml_line(ServiceUnavailable("runner down"))
    RefusalFilter().filter(unavailable)
    assert (unavailable.levelname, unavailable.exc_info) == ("WARNING", None)
    bug = _bentoml_line(KeyError("x"))
    RefusalFilter().filter(bug)
    line = json.loads(JsonFormatter().format(bug))
    assert line["level"] == "ERROR" and "KeyError" in line["exception"]
