"""A deadline for the request head (request line and headers): slow clients, issue 14, item 9.

Half-sent *headers* never reach an ASGI app, so api/transport/middleware.py's body deadline cannot see
them: uvicorn holds such a connection for as long as the client likes. BentoML starts uvicorn in
each worker (``_bentoml_impl/worker/service.py``) with ``uvicorn.Config(app=..., ...)`` and no
``http=`` argument, so uvicorn's default ``"auto"`` resolves, when ``Config.load()`` runs at server
start, to ``uvicorn.protocols.http.auto.AutoHTTPProtocol``: httptools' ``HttpToolsProtocol`` (a
pinned dependency). Neither BentoML's configuration nor its worker options choose another protocol
class, and uvicorn has no header timeout of its own (only ``timeout_keep_alive``, which it arms
after a response and cancels on the next byte received).

``install`` therefore replaces ``AutoHTTPProtocol`` with a subclass that arms a timer when a
connection opens and when the first byte of a request arrives, and cancels it once the head is
parsed. When it fires:

- a head was started: the client gets ``408`` with the service's ``{"error": {...}}`` body and
  ``Connection: close``, then the connection is closed;
- nothing was sent on a new connection: it is closed silently (there is no request to answer, and
  an unsolicited response can be read by a pooled or pre-connecting client as the answer to its
  next request, hence HAProxy's ``option http-ignore-probes``);
- a response is still being written (a pipelined client started the next head): that response
  finishes with ``Connection: close`` and the connection closes after it.

The same class writes each response's head and body in one write (``_OneWritePerStep``): uvicorn
writes the status line and headers when the ASGI app sends ``http.response.start`` and the body
when it sends ``http.response.body``, two socket writes (and two TCP segments for the client to
read) for every response, though a response's messages arrive in one step of the event loop. The
cycle's writes of one step are joined and written at the end of that step (``call_soon``), so a
small response leaves in one write; a streamed body still leaves chunk by chunk. Each socket
write was ~9 % of an API worker's samples on the cold path (py-spy, issue 12).

The same class bounds a request head's size and its number of header fields (HEADER_MAX_BYTES,
HEADER_MAX_COUNT; httptools has no limit, and a 1 MB header or 5,000 headers were read, stored
and handed to the app, issue 34): over either, the client gets ``431`` with the JSON error body
and the connection is closed. The request line and each complete header are counted as httptools
hands them over; a head still unfinished after more than HEADER_MAX_BYTES have arrived (one
endless header, which httptools buffers whole before handing it over) is refused as it arrives.

Between requests on a keep-alive connection no timer runs: uvicorn's keep-alive timeout (BentoML's
``--timeout-keep-alive``, 5 s by default) closes an idle connection, and the deadline starts with
the first byte of the next request, as HAProxy's ``timeout http-request`` does. BentoML imports the
service module before it builds and starts uvicorn, so installing at import time is early enough.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http import auto
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.transport.errors import ApiError, HeadTooLarge, RequestTimeout

HEADER_READ_TIMEOUT_S = 10.0
HEADER_MAX_BYTES = 32 * 1024  # request line and headers; nginx's default buffers hold 4 x 8 KiB
HEADER_MAX_COUNT = 100  # header fields; Apache's LimitRequestFields default
_ORIGINAL = "_armor_original"


def error_response(error: ApiError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A raw answer written before any app sees the request: uvicorn's default headers (Date),
    the documented JSON error body, ``Connection: close``."""
    body = json.dumps(error.body(), ensure_ascii=False, separators=(",", ":")).encode()
    headers = [
        *default_headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    status = f"HTTP/1.1 {int(error.status)} {error.status.phrase}\r\n".encode()
    return status + b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body


def timeout_response(timeout_s: float, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The raw 408 answer."""
    error = RequestTimeout(f"the request headers did not arrive within {timeout_s:g} s")
    return error_response(error, default_headers)


class _HeadRefused(Exception):
    """Raised from a parser callback: httptools stops and uvicorn answers (``send_400_response``)."""


class _OneWritePerStep:
    """A response cycle's transport: what the cycle writes during one step of the event loop is
    written once, at the end of the step (see the module doc). Everything else is the socket's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        """Write what is pending now (the end of the step, or before the socket closes)."""
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """httptools' protocol with a deadline of ``header_timeout_s`` for each request head, and at
    most ``max_head_bytes`` and ``max_headers`` in it."""

    header_timeout_s = HEADER_READ_TIMEOUT_S
    max_head_bytes = HEADER_MAX_BYTES
    max_headers = HEADER_MAX_COUNT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started = False
        self._in_head = False  # from a request's first byte until its headers are complete
        self._head_bytes = self._head_fields = self._head_arrived = 0
        self._head_refusal: HeadTooLarge | None = None

    def data_received(self, data: bytes) -> None:
        if self._head_refusal is not None:
            return
        super().data_received(data)
        if self._in_head:  # the head is not complete: every byte of this chunk on was head
            self._head_arrived += len(data)
            if self._head_arrived > self.max_head_bytes and not self.transport.is_closing():
                self._head_refusal = HeadTooLarge(f"request headers over {self.max_head_bytes} bytes")
                self.send_400_response("")

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4, 1)  # "name: value\r\n"
        super().on_header(name, value)

    def _count_head(self, size: int, fields: int) -> None:
        self._head_bytes += size
        self._head_fields += fields
        if self._head_bytes > self.max_head_bytes:
            self._head_refusal = HeadTooLarge(f"request headers over {self.max_head_bytes} bytes")
        elif self._head_fields > self.max_headers:
            self._head_refusal = HeadTooLarge(f"more than {self.max_headers} request header fields")
        if self._head_refusal is not None:
            raise _HeadRefused

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request httptools gave up on: 431 when a limit stopped it."""
        if self._head_refusal is None:
            return super().send_400_response(msg)
        self._cancel_head_deadline()
        if not self.transport.is_closing():
            self.transport.write(error_response(self._head_refusal, self.server_state.default_headers))
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = self._in_head = True
        self._head_bytes = self._head_fields = self._head_arrived = 0
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_deadline()
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = _OneWritePerStep(self.transport, self.loop)  # type: ignore[assignment]

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown of this connection (it closes the socket at once when the
        response is complete), after what the response wrote in this step is on the socket: a
        streamed response whose last chunk was written in the step of the shutdown lost that chunk
        ("incomplete chunked read" at the client, issue 35's drain test)."""
        self._flush_response()
        super().shutdown()

    def _flush_response(self) -> None:
        if self.cycle is not None and isinstance(self.cycle.transport, _OneWritePerStep):
            self.cycle.transport.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_timer is None and self.header_timeout_s > 0:  # 0: no deadline
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_deadline_passed)

    def _cancel_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer, self._head_started = None, False

    def _head_deadline_passed(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # as uvicorn's shutdown(): close once this response is written
            return
        self._flush_response()
        if self._head_started:
            self.transport.write(timeout_response(self.header_timeout_s, self.server_state.default_headers))
        self.transport.close()


def with_head_deadline(
    timeout_s: float, max_bytes: int = HEADER_MAX_BYTES, max_count: int = HEADER_MAX_COUNT
) -> type[HeaderDeadlineProtocol]:
    """A protocol class whose connections must deliver each request head within ``timeout_s``,
    in at most ``max_bytes`` and ``max_count`` header fields."""

    class TimedHeaderDeadlineProtocol(HeaderDeadlineProtocol):
        header_timeout_s = timeout_s
        max_head_bytes = max_bytes
        max_headers = max_count

    return TimedHeaderDeadlineProtocol


def install(timeout_s: float, max_bytes: int = HEADER_MAX_BYTES, max_count: int = HEADER_MAX_COUNT) -> None:
    """Give every connection uvicorn accepts from now on (with ``http="auto"``, as BentoML starts
    it) a request-head deadline of ``timeout_s`` seconds (0: none), heads of at most ``max_bytes``
    and ``max_count`` fields, and one write per response. Idempotent. Without httptools only a
    timeout of 0 is possible, and then uvicorn's class stays (and h11's own 16 KiB head limit)."""
    original = getattr(auto.AutoHTTPProtocol, _ORIGINAL, auto.AutoHTTPProtocol)
    if original is not HttpToolsProtocol and timeout_s <= 0:
        auto.AutoHTTPProtocol = original
        return
    if original is not HttpToolsProtocol:
        raise RuntimeError(
            f"uvicorn's default HTTP protocol is {original.__name__}, not httptools' HttpToolsProtocol: "
            "the header read timeout supports httptools only (a pinned dependency); install it or set "
            "HEADER_READ_TIMEOUT_S=0"
        )
    protocol = with_head_deadline(timeout_s, max_bytes, max_count)
    setattr(protocol, _ORIGINAL, original)
    auto.AutoHTTPProtocol = protocol


def uninstall() -> None:
    """uvicorn's own class again (tests)."""
    auto.AutoHTTPProtocol = getattr(auto.AutoHTTPProtocol, _ORIGINAL, auto.AutoHTTPProtocol)
