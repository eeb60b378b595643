"""A deadline for the start of a response: the service's ``traffic.timeout`` (settings.py, 30 s).

BentoML enforces that timeout with its ``TimeoutMiddleware``, which runs every request in a task
of its own, behind a future and a timer (``bentoml/_internal/server/http/traffic.py``). The
service's routes skip BentoML's inner middleware (monitoring/traffic.py, ``Shortcut``), so
this wrapper keeps the deadline with what it means there: a response that has not started within
``timeout_s`` is answered 504; once it has started (a batch's stream), it is not cut.

All requests share one timer. Every request has the same timeout, so the requests waiting for
their response to start, kept in arrival order, are also in deadline order: the timer is set for
the oldest one, and when it fires it cancels those that are due and is set again for the next.
A request costs a dictionary entry, not a timer of its own (over a trivial app, ``asyncio.timeout``
per request added 5.5–6.4 µs, the shared timer 1.6–3.9 µs; issue 12). A timed-out request is
cancelled as ``asyncio.timeout`` would cancel it, and told apart from any other cancellation (a
client that went away) the same way. The 504 is the service's error response
(``api.transport.handlers.failure_response``).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.transport.errors import GatewayTimeout
from api.transport.handlers import failure_response


class _Waiting:
    """A request whose response has not started yet."""

    __slots__ = ("task", "deadline", "cancelling", "expired")

    def __init__(self, task: asyncio.Task[object], deadline: float):
        self.task, self.deadline = task, deadline
        self.cancelling = task.cancelling()  # cancellations asked before ours: not ours to undo
        self.expired = False


class ResponseDeadline:
    """``app`` whose responses must start within ``timeout_s`` (504 otherwise)."""

    def __init__(self, app: ASGIApp, timeout_s: float):
        self.app, self.timeout_s = app, timeout_s
        self._waiting: dict[_Waiting, None] = {}  # arrival order = deadline order
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None  # an ASGI app runs in a task
        waiting = self._wait(task)

        async def send_started(message: Message) -> None:
            self._waiting.pop(waiting, None)  # a response under way is not cut
            await send(message)

        try:
            await self.app(scope, receive, send_started)
        except asyncio.CancelledError:
            if not waiting.expired or task.uncancel() > waiting.cancelling:
                raise  # not (only) this deadline's
            error = GatewayTimeout(f"no response started within {self.timeout_s:g} s (the service's request timeout)")
            await failure_response(error)(scope, receive, send)
        finally:
            self._waiting.pop(waiting, None)

    def _wait(self, task: asyncio.Task[object]) -> _Waiting:
        loop = task.get_loop()
        if loop is not self._loop:  # the first request of this event loop (one per worker; tests run several)
            self._loop, self._timer = loop, None
            self._waiting.clear()
        waiting = _Waiting(task, loop.time() + self.timeout_s)
        self._waiting[waiting] = None
        if self._timer is None:
            self._timer = loop.call_at(waiting.deadline, self._expire)
        return waiting

    def _expire(self) -> None:
        """Cancel the requests that are due; set the timer for the next one, if any."""
        assert self._loop is not None
        now, self._timer = self._loop.time(), None
        while self._waiting:
            oldest = next(iter(self._waiting))
            if oldest.deadline > now:
                self._timer = self._loop.call_at(oldest.deadline, self._expire)
                return
            del self._waiting[oldest]
            oldest.expired = True
            oldest.task.cancel()
