"""monitoring/logs.py: one JSON object a line, with the request's id and its trace (the current
OpenTelemetry span's, else the client's traceparent)."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from monitoring.logs import REQUEST_ID, TRACEPARENT, JsonFormatter

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
