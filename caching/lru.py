"""In-process TTL + LRU cache bounded by entry count and by memory.

Values are stored as ``bytes`` (the caller serialises, e.g. with orjson), so the
memory an entry costs can be counted exactly instead of guessed with
``sys.getsizeof`` on nested objects.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from settings import CacheLayerSettings

# Fixed cost charged per entry on top of len(key) + len(value). It stands for the
# OrderedDict node, the entry record and the expiry float, so that many tiny
# entries still count against the memory cap. It is a bookkeeping constant, not a
# measurement of CPython's real footprint.
ENTRY_OVERHEAD_BYTES = 64

# Memory is reported in MB = 10**6 bytes (SI), everywhere in this package.
BYTES_PER_MB = 1_000_000


def entry_size_bytes(key: str, value: bytes) -> int:
    """Bytes one entry counts against the memory cap (key measured as UTF-8)."""
    return len(key.encode("utf-8")) + len(value) + ENTRY_OVERHEAD_BYTES


@dataclass(frozen=True)
class CacheStats:
    """A consistent snapshot of a cache's counters, taken under its lock."""

    cache_size: int
    hits: int
    misses: int
    hit_rate_percent: float
    evictions: int
    expirations: int
    rejected: int
    memory_usage_mb: float
    max_entries: int
    max_memory_mb: float
    ttl_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON status endpoints."""
        return asdict(self)


_NEVER = float("inf")


class CacheObserver(Protocol):
    """Told of every removal and size change as it happens (monitoring's Prometheus reporter),
    so no one copies the cache's counters after the fact."""

    def removed(self, reason: Literal["evicted", "expired"], count: int) -> None: ...

    def resized(self, entries: int, memory_bytes: int) -> None: ...


@dataclass
class _Entry:
    value: bytes
    expires_at: float  # clock time; _NEVER when the entry has no TTL
    size_bytes: int


class TTLLRUCache:
    """Thread-safe cache with per-entry TTL and least-recently-used eviction.

    Bounded twice: by ``max_entries`` and by ``max_memory_bytes`` (see
    :func:`entry_size_bytes`). Every operation holds a ``threading.Lock`` for a
    short, non-awaiting critical section, so the cache is safe both from worker
    threads and from coroutines on one event loop. ``clock`` is injectable so
    tests move time forward instead of sleeping.
    """

    def __init__(
        self,
        max_entries: int = 1024,
        max_memory_bytes: int = 64 * BYTES_PER_MB,
        ttl_seconds: float | None = 300.0,
        clock: Callable[[], float] = time.monotonic,
        observer: CacheObserver | None = None,
    ) -> None:
        if max_entries < 1 or max_memory_bytes < 1:
            raise ValueError("max_entries and max_memory_bytes must be positive")
        self._max_entries = max_entries
        self._max_memory_bytes = max_memory_bytes
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._memory_bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expirations = 0
        self._rejected = 0
        self._observer = observer

    def holds(self, key: str) -> bool:
        """Whether a live value is stored under ``key``, without counting a hit or a miss or
        changing its place (a look ahead of a request, not a request)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry.expires_at > self._clock()

    def get(self, key: str) -> bytes | None:
        """Return the live value and mark it most recently used, else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at <= self._clock():
                self._remove(key)
                self._count_removed("expired", 1)
                self._report_size()
                entry = None
            if entry is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry.value

    def set(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value``; ``ttl`` overrides the default. False if rejected.

        A value larger than the whole memory cap is refused rather than
        evicting everything for it; any older value under ``key`` is dropped
        so a refused write never leaves stale data readable.
        """
        size = entry_size_bytes(key, value)
        with self._lock:
            if key in self._entries:
                self._remove(key)
            if size > self._max_memory_bytes:
                self._rejected += 1
                self._report_size()
                return False
            expires_at = self._expiry_time(ttl)
            self._entries[key] = _Entry(value, expires_at, size)
            self._memory_bytes += size
            self._evict_over_limits()
            self._report_size()
            return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was present."""
        with self._lock:
            if key not in self._entries:
                return False
            self._remove(key)
            self._report_size()
            return True

    def clear(self) -> None:
        """Drop every entry; counters are kept so stats stay cumulative."""
        with self._lock:
            self._entries.clear()
            self._memory_bytes = 0
            self._report_size()

    def sweep_expired(self) -> int:
        """Remove expired entries now so they stop holding memory; return count."""
        with self._lock:
            now = self._clock()
            expired = [k for k, e in self._entries.items() if e.expires_at <= now]
            for key in expired:
                self._remove(key)
            self._count_removed("expired", len(expired))
            if expired:
                self._report_size()
            return len(expired)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def stats(self) -> CacheStats:
        """Snapshot of size, counters and limits."""
        with self._lock:
            lookups = self._hits + self._misses
            return CacheStats(
                cache_size=len(self._entries),
                hits=self._hits,
                misses=self._misses,
                hit_rate_percent=100.0 * self._hits / lookups if lookups else 0.0,
                evictions=self._evictions,
                expirations=self._expirations,
                rejected=self._rejected,
                memory_usage_mb=self._memory_bytes / BYTES_PER_MB,
                max_entries=self._max_entries,
                max_memory_mb=self._max_memory_bytes / BYTES_PER_MB,
                ttl_seconds=self._ttl_seconds,
            )

    @property
    def memory_usage_bytes(self) -> int:
        """Bytes currently counted against the cap (see entry_size_bytes)."""
        with self._lock:
            return self._memory_bytes

    def _expiry_time(self, ttl: float | None) -> float:
        effective = self._ttl_seconds if ttl is None else ttl
        return _NEVER if effective is None else self._clock() + effective

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._memory_bytes -= entry.size_bytes

    def _evict_over_limits(self) -> None:
        evicted = 0
        while len(self._entries) > self._max_entries or self._memory_bytes > self._max_memory_bytes:
            oldest_key = next(iter(self._entries))
            self._remove(oldest_key)
            evicted += 1
        self._count_removed("evicted", evicted)  # the caller reports the size once

    def _count_removed(self, reason: Literal["evicted", "expired"], count: int) -> None:
        if reason == "evicted":
            self._evictions += count
        else:
            self._expirations += count
        if self._observer is not None and count:
            self._observer.removed(reason, count)

    def _report_size(self) -> None:
        if self._observer is not None:
            self._observer.resized(len(self._entries), self._memory_bytes)


def local_cache(layer: CacheLayerSettings, observer: CacheObserver | None = None) -> TTLLRUCache | None:
    """The in-process cache of one layer as configured, or None when the layer is switched off."""
    if not layer.enabled:
        return None
    return TTLLRUCache(
        max_entries=layer.entries, max_memory_bytes=layer.max_bytes, ttl_seconds=layer.ttl_s, observer=observer
    )
