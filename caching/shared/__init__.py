"""The response layer shared beyond one process, behind one async interface.

Two stores: ``RedisCache`` (across instances) and ``MachineCache`` (a SQLite file shared by the
API workers of one machine). Both never raise (a failure is a counted miss), never block the
event loop, and are closed by their owner on shutdown.
"""

from __future__ import annotations

from typing import Any, Protocol

from caching.shared.redis_layer import RedisCache
from caching.shared.sqlite_layer import MachineCache
from settings import SharedCacheSettings

MACHINE_CACHE_FILE = "armor_response_cache.sqlite"


class SharedLayer(Protocol):
    """What LayeredCache and the status views need of a shared store."""

    errors: int
    timeouts: int

    async def get(self, key: str) -> bytes | None: ...

    async def peek(self, key: str) -> bytes | None:
        """``get`` that counts neither a hit nor a miss (a look ahead of a request, not a request)."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> bool: ...

    async def ping(self) -> bool: ...

    async def sweep_expired(self) -> int: ...

    async def stats(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def shared_layer(settings: SharedCacheSettings) -> SharedLayer | None:
    """Redis with CACHE_BACKEND=redis; else the machine's SQLite file when there is a directory
    the workers share; else nothing (one process: the local layer is all there is)."""
    if settings.backend == "redis":
        return RedisCache(settings.redis.url, timeout_s=settings.redis.timeout_s, ttl_seconds=settings.ttl_s)
    if settings.machine_dir is not None:
        return MachineCache(
            settings.machine_dir / MACHINE_CACHE_FILE,
            max_entries=settings.entries,
            ttl_seconds=settings.ttl_s,
            max_bytes=settings.max_bytes,
        )
    return None


__all__ = ["MACHINE_CACHE_FILE", "MachineCache", "RedisCache", "SharedLayer", "shared_layer"]
