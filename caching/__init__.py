"""Prediction caching: in-process TTL/LRU, optional shared Redis, coalescing."""

from caching.layered import LayeredCache
from caching.lru import BYTES_PER_MB, ENTRY_OVERHEAD_BYTES, CacheStats, TTLLRUCache
from caching.machine_layer import MachineCache
from caching.redis_layer import RedisCache
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
    "SingleFlight",
    "TTLLRUCache",
]
