"""One background task that awaits an action every so many seconds: the cache sweeper's
(caching/sweeper.py) and the metrics' flusher's (monitoring/tally.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class Periodic:
    """Awaits ``action()`` every ``interval_s`` seconds on the running loop until stopped. An
    action that raises is logged and the loop goes on (one bad round must not end it for good).
    ``sleep`` is injectable so tests drive the loop without real waiting."""

    def __init__(
        self,
        action: Callable[[], Awaitable[object]],
        interval_s: float,
        what: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``what``: the action's name in the log."""
        self._action, self._interval_s, self._what, self._sleep = action, interval_s, what, sleep
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while the background task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop on the running event loop; no-op if already running."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the loop and wait until it has finished; stopping twice is harmless."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            # Swallow only the loop's own cancellation; if the caller of stop() is itself being
            # cancelled, that must propagate.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def _run(self) -> None:
        while True:
            await self._sleep(self._interval_s)
            try:
                await self._action()
            except Exception:
                logger.exception("%s failed", self._what)
