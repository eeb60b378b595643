"""Background removal of expired cache entries.

Expired entries are otherwise only dropped when read or evicted, so a cache of
keys nobody asks for again would keep holding memory until pushed out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

logger = logging.getLogger(__name__)


class Sweepable(Protocol):
    """A cache that can drop its expired entries (awaited: a shared layer's sweep is I/O)."""

    async def sweep_expired(self) -> int: ...


class ExpirySweeper:
    """Call ``sweep_expired()`` on each cache every ``interval_s`` seconds.

    ``sleep`` is injectable so tests drive the loop without real waiting.
    """

    def __init__(
        self,
        caches: Sequence[Sweepable],
        interval_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._caches = list(caches)
        self._interval_s = interval_s
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.sweeps = 0
        self.removed = 0

    @property
    def running(self) -> bool:
        """True while the background task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop on the running event loop; no-op if already running."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the loop and wait until it has finished."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            # Swallow only the loop's own cancellation; if the caller of stop()
            # is itself being cancelled, that must propagate.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def sweep_once(self) -> int:
        """Sweep every cache now; return how many entries were removed."""
        removed = 0
        for cache in self._caches:
            removed += await cache.sweep_expired()
        self.sweeps += 1
        self.removed += removed
        return removed

    async def _run(self) -> None:
        while True:
            await self._sleep(self._interval_s)
            try:
                await self.sweep_once()
            except Exception:  # one bad sweep must not end the loop for good
                logger.exception("cache sweep failed")
