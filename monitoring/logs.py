"""Structured logs: one JSON object per line, carrying the request id of the request being served.

The request id is set in a context variable when a request starts (monitoring/request_id.py), so
every log line written while serving it (cache warnings, runner failures, the access line) carries
it, on the API's side and the runner's; the client gets it in ``X-Request-ID`` and the body.

A line also carries ``trace_id``: with TRACING on, the one of the request's OpenTelemetry span
(BentoML's middleware makes one for every request; it continues a client's traceparent, and the
runner's span continues the API's), with ``span_id``; otherwise, that of the W3C traceparent the
request came with; none without either. Looking the span up is a context-variable read per line
written, nothing per request.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

from opentelemetry.trace import get_current_span

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# the W3C traceparent the request came with (monitoring/request_id.py); its lines carry the trace id
TRACEPARENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
# what BentoML's TraceRecordFilter adds to its records for its text format (bentoml/_internal/log.py);
# its request_id is a span's, not the request's
_BENTOML_FIELDS = frozenset({"levelname_bracketed", "component", "trace_msg", "request_id", "service_name"})
# the loggers BentoML's server logging configures (SERVER_LOGGING_CONFIG): the root, bentoml, uvicorn, circus
FOREIGN_LOGGERS = ("", "bentoml", "uvicorn", "uvicorn.error", "uvicorn.access", "circus")


def component() -> str:
    """Which process wrote the line, as BentoML names it (``entry_service:ceramic_armor:1``,
    ``service:armor_models:1``; ``cli`` in the process manager); empty outside a serve."""
    from bentoml._internal.context import server_context

    parts = (server_context.service_type, server_context.service_name, server_context.worker_index)
    return ":".join(str(part) for part in parts if part)


def trace_ids() -> dict[str, str]:
    """``trace_id`` and ``span_id`` of the current OpenTelemetry span; without one (TRACING off),
    the ``trace_id`` of the request's traceparent; else nothing."""
    span = get_current_span().get_span_context()
    if span.trace_id:  # 0: no span (OpenTelemetry's INVALID_SPAN)
        return {"trace_id": format(span.trace_id, "032x"), "span_id": format(span.span_id, "016x")}
    traceparent = TRACEPARENT.get()
    return {} if traceparent is None else {"trace_id": traceparent[3:35]}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if served_by := component():
            entry["component"] = served_by
        if (request_id := REQUEST_ID.get()) is not None:
            entry["request_id"] = request_id
        entry.update(trace_ids())
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in _BENTOML_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# BentoML logs every exception its typed endpoints raise as "Exception on <path> [<method>]" at ERROR
# with the traceback, a refusal included (bentoml/_internal/server/http_app.py ``log_exception``)
BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"


class RefusalFilter(logging.Filter):
    """BentoML's line for a typed endpoint's refusal, not an error of the server: a refusal of the
    request (pydantic's ValidationError, a BentoMLException under 500) becomes an INFO line, a 5xx
    BentoMLException (the runner unavailable) a WARNING, both without the traceback and with the
    status and message; any other exception stays an ERROR with its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        status = _refusal_status(exc)
        if status is not None:
            record.levelno, record.levelname = (logging.INFO, "INFO") if status < 500 else (logging.WARNING, "WARNING")
            record.msg, record.args = f"{record.getMessage()} refused: {status} {exc}", None
            record.exc_info, record.exc_text = None, None
            record.status = status
        return True


def _refusal_status(exc: BaseException | None) -> int | None:
    """The HTTP status of a refusal BentoML answers for ``exc``; None for anything else."""
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return 400
    if isinstance(exc, BentoMLException):
        return int(exc.error_code)
    return None


def adopt_foreign_lines() -> None:
    """The handlers BentoML configured for its own, uvicorn's and circus's loggers write this JSON
    too (same fields as the service's lines); call after BentoML's logging set-up (a worker
    imports the service after it); idempotent."""
    for name in FOREIGN_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler.formatter, JsonFormatter):
                handler.setFormatter(JsonFormatter())


def configure(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the service's own loggers (``armor.*``), and BentoML's, uvicorn's and
    circus's lines in the same JSON, a typed endpoint's refusal not as an error (``RefusalFilter``);
    idempotent."""
    adopt_foreign_lines()
    bentoml_http = logging.getLogger(BENTOML_HTTP_LOGGER)
    if not any(isinstance(f, RefusalFilter) for f in bentoml_http.filters):
        bentoml_http.addFilter(RefusalFilter())
    logger = logging.getLogger("armor")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
