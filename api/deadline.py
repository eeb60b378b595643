"""A deadline for the start of a response: the service's ``traffic.timeout`` (settings.py, 30 s).

BentoML enforces that timeout with its ``TimeoutMiddleware``, which runs every request in a task
of its own, behind a future and a timer (``bentoml/_internal/server/http/traffic.py``). The
service's routes skip BentoML's inner middleware (monitoring/bounded_labels.py, ``Shortcut``), so
this wrapper keeps the deadline with what it means there: a response that has not started within
``timeout_s`` is answered 504; once it has started (a batch's stream), it is not cut. It needs one
``asyncio.timeout`` and no task.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import GatewayTimeout


class ResponseDeadline:
    """``app`` whose responses must start within ``timeout_s`` (504 otherwise)."""

    def __init__(self, app: ASGIApp, timeout_s: float):
        self.app, self.timeout_s = app, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        deadline = asyncio.timeout(self.timeout_s)

        async def send_started(message: Message) -> None:
            nonlocal started
            if not started:
                started = True
                deadline.reschedule(None)  # a response under way is not cut
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, send_started)
        except TimeoutError:
            if started or not deadline.expired():  # not this deadline's
                raise
            await self._timed_out(send)

    async def _timed_out(self, send: Send) -> None:
        error = GatewayTimeout(f"no response started within {self.timeout_s:g} s (the service's request timeout)")
        body = orjson.dumps(error.body())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": int(error.status), "headers": headers})
        await send({"type": "http.response.body", "body": body})
