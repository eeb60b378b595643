"""One request id from the client through the API and the runner, and the access line.

``RequestIdentity`` is the ASGI middleware in front of every route of a service (the API's app
and BentoML's own endpoints, service.py; the runner's endpoints, runners/services.py):

- The id is the client's ``X-Request-ID`` when it is 1 to ``MAX_ID_LENGTH`` printable ASCII
  characters, else the ``request_id`` member of a W3C ``baggage`` header (how the API's calls reach
  the runner through BentoML's client, ``carried``), else 32 new random hex digits. It is set in
  ``monitoring.logs.REQUEST_ID`` for the request's duration (every log line carries it, every body
  and error body of the API states it) and returned in the ``X-Request-ID`` response header.
- A valid W3C ``traceparent`` is kept in ``monitoring.logs.TRACEPARENT`` (log lines carry its
  trace id) and carried on to the runner.
- With ``access_log`` on, one JSON line a request, whatever its route and status, once the last
  byte of its answer is sent (a streamed batch: at its end).

The socket hop to the runner's default models (runners/hop.py) carries the id in its frames. A call
to the runner serves the rows of every request an API worker coalesced into it: it carries the id
of the request whose task sent it (api/prediction/coalescer.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitoring.logs import REQUEST_ID, TRACEPARENT

MAX_ID_LENGTH = 128
SCOPE_KEY = "armor.request_id"  # set once: the middleware may wrap an app mounted behind another copy of it
_TRACEPARENT = re.compile(rb"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
access_log = logging.getLogger("armor.access")


def accepted_id(given: bytes | None) -> str | None:
    """``given`` as the request's id when it is 1 to MAX_ID_LENGTH printable ASCII characters."""
    if given is None or not 0 < len(given) <= MAX_ID_LENGTH or not given.isascii():
        return None
    text = given.decode("ascii")
    return text if text.isprintable() else None


def baggage_id(baggage: bytes | None) -> str | None:
    """The ``request_id`` member of a W3C baggage header, when it is an acceptable id."""
    if baggage is None:
        return None
    for member in baggage.split(b","):
        key, _, value = member.partition(b"=")
        if key.strip() == b"request_id":
            # percent- and plus-decoded as OpenTelemetry's W3CBaggagePropagator encodes it
            decoded = unquote_plus(value.split(b";")[0].strip().decode("latin-1"), encoding="latin-1")
            return accepted_id(decoded.encode("latin-1"))
    return None


def valid_traceparent(given: bytes | None) -> str | None:
    """A W3C trace context ``traceparent`` (version, trace id, parent id, flags), or None."""
    return given.decode("ascii") if given is not None and _TRACEPARENT.match(given) else None


def new_id() -> str:
    """32 random hex digits, as a uuid4's hex but without building a UUID (1 µs against 4.7 here)."""
    return os.urandom(16).hex()


def identify(scope: Scope) -> tuple[str, str | None]:
    """The request's id (given or new) and its traceparent (or None), from its headers."""
    given = baggage = traceparent = None
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            given = value
        elif key == b"traceparent":
            traceparent = value
        elif key == b"baggage":
            baggage = value
    request_id = accepted_id(given) or baggage_id(baggage) or new_id()
    return request_id, valid_traceparent(traceparent)


class RequestIdentity:
    """ASGI middleware: the request's id and traceparent in context, the id in the response
    header, and the access line when ``access_log``."""

    def __init__(self, app: ASGIApp, access_log: bool = False):
        self.app, self.access_log = app, access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or SCOPE_KEY in scope:
            return await self.app(scope, receive, send)
        request_id, traceparent = identify(scope)
        scope[SCOPE_KEY] = request_id
        header = (b"x-request-id", request_id.encode("ascii"))
        status, started = 0, time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        id_token, trace_token = REQUEST_ID.set(request_id), TRACEPARENT.set(traceparent)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log:
                _access_line(scope, status, started)
            TRACEPARENT.reset(trace_token)
            REQUEST_ID.reset(id_token)


def _access_line(scope: Scope, status: int, started: float) -> None:
    """``status`` 0: the request ended without an answer (the client went away, or an error)."""
    access_log.info(
        "request",
        extra={
            "method": scope.get("method", ""),
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1e3, 3),
        },
    )


@contextlib.contextmanager
def carried() -> Iterator[None]:
    """Within it, OpenTelemetry's propagation (which BentoML's client applies to every call it makes)
    sends the current request's id as W3C baggage and its traceparent on: the runner's
    ``RequestIdentity`` reads them. Nothing is attached outside a request."""
    request_id = REQUEST_ID.get()
    if request_id is None:
        yield
        return
    from opentelemetry import baggage, context, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    current: Any = context.get_current()
    traceparent = TRACEPARENT.get()
    if traceparent is not None and not trace.get_current_span(current).get_span_context().is_valid:
        current = TraceContextTextMapPropagator().extract({"traceparent": traceparent}, context=current)
    token = context.attach(baggage.set_baggage("request_id", request_id, context=current))
    try:
        yield
    finally:
        context.detach(token)
