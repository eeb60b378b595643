"""Collapse concurrent identical work into one call (request coalescing).

When a popular key misses the cache, many requests would otherwise compute the
same prediction at once; SingleFlight lets the first caller do it and the rest
wait for that result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Run at most one ``coro_factory`` per key at a time on one event loop.

    The work runs in its own task and every caller awaits it through
    ``asyncio.shield``: a caller that is cancelled (client disconnect) stops
    waiting without cancelling the work the other callers share. The key is
    forgotten as soon as the work finishes, so a later call starts fresh and
    an exception is never cached.
    """

    def __init__(self) -> None:
        self._in_flight: dict[Hashable, asyncio.Future[T]] = {}
        self.calls = 0
        self.shared = 0

    async def do(self, key: Hashable, coro_factory: Callable[[], Awaitable[T]]) -> T:
        """Return the result of the in-flight call for ``key``, starting one if none."""
        task = self._in_flight.get(key)
        if task is None:
            task = self._start(key, coro_factory)
        else:
            self.shared += 1
        return await asyncio.shield(task)

    def in_flight(self) -> int:
        """Number of keys whose work is running now."""
        return len(self._in_flight)

    def stats(self) -> dict[str, int]:
        """Counters for status endpoints."""
        return {
            "calls": self.calls,
            "shared": self.shared,
            "in_flight": self.in_flight(),
        }

    def _start(self, key: Hashable, coro_factory: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        self.calls += 1
        task: asyncio.Future[T] = asyncio.ensure_future(coro_factory())
        self._in_flight[key] = task
        task.add_done_callback(lambda done: self._finish(key, done))
        return task

    def _finish(self, key: Hashable, task: asyncio.Future[T]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if not task.cancelled():
            # Mark the exception retrieved: if every caller was cancelled,
            # nobody else will, and asyncio would log a spurious warning.
            task.exception()
