"""Background removal of expired cache entries.

Expired entries are otherwise only dropped when read or evicted, so a cache of
keys nobody asks for again would keep holding memory until pushed out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from caching.periodic import Periodic


class Sweepable(Protocol):
    """A cache that can drop its expired entries (awaited: a shared layer's sweep is I/O)."""

    async def sweep_expired(self) -> int: ...


class ExpirySweeper:
    """Call ``sweep_expired()`` on each cache every ``interval_s`` seconds (caching/periodic.py).

    ``sleep`` is injectable so tests drive the loop without real waiting.
    """

    def __init__(
        self,
        caches: Sequence[Sweepable],
        interval_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._caches = list(caches)
        self._loop = Periodic(self.sweep_once, interval_s, "cache sweep", sleep)
        self.sweeps = 0
        self.removed = 0

    @property
    def running(self) -> bool:
        """True while the background task is alive."""
        return self._loop.running

    def start(self) -> None:
        """Start the loop on the running event loop; no-op if already running."""
        self._loop.start()

    async def stop(self) -> None:
        """Cancel the loop and wait until it has finished."""
        await self._loop.stop()

    async def sweep_once(self) -> int:
        """Sweep every cache now; return how many entries were removed."""
        removed = 0
        for cache in self._caches:
            removed += await cache.sweep_expired()
        self.sweeps += 1
        self.removed += removed
        return removed
