"""Prediction caching: in-process TTL/LRU, an optional shared layer (Redis or the machine's
SQLite file), coalescing, and the background sweeper."""

from caching.layered import LayeredCache
from caching.lru import BYTES_PER_MB, ENTRY_OVERHEAD_BYTES, CacheStats, TTLLRUCache, local_cache
from caching.shared import MachineCache, RedisCache, SharedLayer, shared_layer
from caching.singleflight import SingleFlight
from caching.sweeper import ExpirySweeper

__all__ = [
    "BYTES_PER_MB",
    "ENTRY_OVERHEAD_BYTES",
    "CacheStats",
    "ExpirySweeper",
    "LayeredCache",
    "MachineCache",
    "RedisCache",
    "SharedLayer",
    "SingleFlight",
    "TTLLRUCache",
    "local_cache",
    "shared_layer",
]
