"""Two-level cache: per-process memory in front of an optional shared layer (Redis or the
machine's SQLite file, caching.shared)."""

from __future__ import annotations

from typing import Any

from caching.lru import TTLLRUCache
from caching.shared import SharedLayer


class LayeredCache:
    """Read local first, then the shared layer; write both.

    The local layer answers repeat requests without a hop; the shared layer lets the other
    workers and replicas reuse each other's results. A shared hit is copied into the local
    layer with the local default TTL (asking for the remaining TTL would cost a second round trip).
    """

    def __init__(self, local: TTLLRUCache, shared: SharedLayer | None = None) -> None:
        self.local = local
        self.shared = shared

    async def get(self, key: str) -> bytes | None:
        """Value from the nearest layer that has it, else None."""
        value = self.local.get(key)
        if value is not None or self.shared is None:
            return value
        value = await self.shared.get(key)
        if value is not None:
            self.local.set(key, value)
        return value

    async def fill_local(self, key: str) -> bool:
        """Make the local layer hold ``key`` if any layer does, counting no hit or miss in either
        (a look ahead of a request, the warm-up's, must leave the hit rates to the askers): True
        when the local layer held it already or the shared layer had it (copied with the local
        default TTL; a value the local layer refuses, larger than its cap, stays where ``get``
        finds it)."""
        if self.local.holds(key):
            return True
        value = None if self.shared is None else await self.shared.peek(key)
        if value is None:
            return False
        self.local.set(key, value)
        return True

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store in both layers; the shared write is capped by its timeout."""
        self.local.set(key, value, ttl)
        if self.shared is not None:
            await self.shared.set(key, value, ttl)

    async def stats(self) -> dict[str, Any]:
        """Local stats, the backend name, and the shared layer's under ``shared``."""
        merged = self.local.stats().as_dict()
        if self.shared is None:
            return merged | {"backend": "memory"}
        shared = await self.shared.stats()
        return merged | {"backend": shared["backend"], "shared": shared}

    async def sweep_expired(self) -> int:
        """Sweep both layers (the Redis layer has nothing to sweep: Redis expires its own keys)."""
        swept = self.local.sweep_expired()
        if self.shared is not None:
            swept += await self.shared.sweep_expired()
        return swept

    async def close(self) -> None:
        """Release the shared layer's connections and thread."""
        if self.shared is not None:
            await self.shared.close()
