"""Two-level cache: per-process memory in front of an optional shared Redis."""

from __future__ import annotations

from typing import Any

from caching.lru import TTLLRUCache
from caching.machine_layer import MachineCache
from caching.redis_layer import RedisCache


class LayeredCache:
    """Read local first, then Redis; write both.

    The local layer answers repeat requests without a network hop; the shared
    layer lets several service replicas reuse each other's results. A Redis hit
    is copied into the local layer with the local default TTL (asking Redis for
    the remaining TTL would cost a second round trip).
    """

    def __init__(self, local: TTLLRUCache, shared: RedisCache | MachineCache | None = None) -> None:
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

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store in both layers; the Redis write is capped by its timeout."""
        self.local.set(key, value, ttl)
        if self.shared is not None:
            await self.shared.set(key, value, ttl)

    def stats(self) -> dict[str, Any]:
        """Local stats, the backend name, and Redis stats under ``shared``."""
        merged = self.local.stats().as_dict()
        merged["backend"] = "memory" if self.shared is None else self.shared.stats()["backend"]
        if self.shared is not None:
            merged["shared"] = self.shared.stats()
        return merged

    def sweep_expired(self) -> int:
        """Sweep the local layer, and the machine-shared one (Redis expires its own keys)."""
        swept = self.local.sweep_expired()
        if isinstance(self.shared, MachineCache):
            swept += self.shared.sweep_expired()
        return swept

    async def close(self) -> None:
        """Release the Redis connection pool, if any."""
        if self.shared is not None:
            await self.shared.close()
