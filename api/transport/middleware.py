"""ASGI middleware of the API: the request body size limit (413 before anything parses the body),
with a larger limit on the paths that take many materials (the /batch routes), and a deadline
for the body of the single-material routes (408 for a client that stops sending half-way)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.transport.errors import ApiError, BodyTooLarge, RequestTimeout

# A refused body up to this size is read to its end (and discarded) before the 413 is sent: a
# client that sends the whole body before reading (Python's urllib does) would otherwise see the
# connection reset instead of the answer, as nginx's lingering close avoids. Larger bodies are
# refused at once.
DRAIN_MAX_BYTES = 64 * 1024 * 1024
BODY_READ_TIMEOUT_S = 10.0


class BodySizeLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` (``path_limits[path]`` on the paths listed
    there) with 413 before they are parsed. A declared size (Content-Length) is checked at once; a
    body without one (chunked transfer) is read here, at most the limit + 1 bytes, and handed on
    only if it fits.

    Slow clients: a body the middleware reads (every body of the single-material routes, and any
    chunked one) must arrive within ``body_timeout_s`` or the request gets 408 — 3,000 half-sent
    requests were otherwise held for as long as their clients liked (issue 14, item 9). The /batch
    routes stream large bodies through and rely on the service's request timeout. Half-sent
    *headers* never reach the application: api/transport/header_timeout.py bounds them (HEADER_READ_TIMEOUT_S).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        drain_max_bytes: int = DRAIN_MAX_BYTES,
        path_limits: Mapping[str, int] | None = None,
        body_timeout_s: float = BODY_READ_TIMEOUT_S,
    ):
        self.app, self.max_bytes, self.drain_max_bytes = app, max_bytes, drain_max_bytes
        self.path_limits = dict(path_limits or {})
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        limit = self.path_limits.get(path, self.max_bytes)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                if int(declared) <= self.drain_max_bytes:
                    await self._drain(receive, 0)
                return await self._refuse(send, BodyTooLarge(f"request body over the limit of {limit} bytes"))
            if path in self.path_limits:  # a large body streams through to its route
                return await self.app(scope, receive, send)
        try:
            async with asyncio.timeout(self.body_timeout_s):  # no task per request, unlike wait_for
                messages = await self._read_within_limit(receive, limit)
        except TimeoutError:
            timeout = RequestTimeout(f"the request body did not arrive within {self.body_timeout_s:g} s")
            return await self._refuse(send, timeout)
        if messages is None:
            return await self._refuse(send, BodyTooLarge(f"request body over the limit of {limit} bytes"))
        replay = iter(messages)
        return await self.app(scope, lambda: self._next(replay, receive), send)

    async def _read_within_limit(self, receive: Receive, limit: int) -> list[Message] | None:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            ended = message["type"] != "http.request" or not message.get("more_body", False)
            if size > limit:
                if not ended:
                    await self._drain(receive, size)
                return None
            if ended:
                return messages

    async def _drain(self, receive: Receive, already: int) -> None:
        """Read and discard the rest of the body, up to ``drain_max_bytes`` in all."""
        size = already
        while size <= self.drain_max_bytes:
            message = await receive()
            size += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    @staticmethod
    async def _next(replay: Iterator[Message], receive: Receive) -> MutableMapping[str, Any]:
        return next(replay, None) or await receive()

    async def _refuse(self, send: Send, error: ApiError) -> None:
        await JSONResponse(error.body(), status_code=int(error.status))({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    """The refusal reads nothing more from the client."""
    return {"type": "http.disconnect"}
