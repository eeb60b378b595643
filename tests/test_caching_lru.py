"""caching/lru.py: TTL, LRU, memory cap, exact counters, thread safety, the observer hook."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator

import pytest

from caching import BYTES_PER_MB, ENTRY_OVERHEAD_BYTES, CacheStats, TTLLRUCache
from caching.lru import entry_size_bytes
from tests.support import FakeClock, make_cache


def value_of_size(key: str, total_bytes: int) -> bytes:
    """A value making the entry for ``key`` cost exactly ``total_bytes``."""
    return b"x" * (total_bytes - len(key) - ENTRY_OVERHEAD_BYTES)


# --- TTL ------------------------------------------------------------------


def test_entry_is_served_until_ttl_then_expires() -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    cache.set("a", b"1")
    clock.advance(9.999)
    assert cache.get("a") == b"1"
    clock.advance(0.001)
    assert cache.get("a") is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.expirations, stats.cache_size) == (
        1,
        1,
        1,
        0,
    )
    assert cache.memory_usage_bytes == 0


def test_per_call_ttl_overrides_default() -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    cache.set("short", b"1", ttl=1.0)
    cache.set("long", b"2", ttl=100.0)
    clock.advance(50.0)
    assert cache.get("short") is None
    assert cache.get("long") == b"2"


def test_no_default_ttl_means_entries_never_expire() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl_seconds=None)
    cache.set("a", b"1")
    clock.advance(1e9)
    assert cache.get("a") == b"1"


# --- LRU and entry bound ----------------------------------------------------


def test_access_refreshes_recency_and_least_recent_is_evicted() -> None:
    cache = make_cache(FakeClock(), max_entries=3)
    for key in ("a", "b", "c"):
        cache.set(key, key.encode())
    assert cache.get("a") == b"a"
    cache.set("d", b"d")
    assert cache.get("b") is None
    assert [cache.get(k) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]
    assert cache.stats().evictions == 1


def test_overwriting_a_key_refreshes_recency() -> None:
    cache = make_cache(FakeClock(), max_entries=2)
    cache.set("a", b"1")
    cache.set("b", b"2")
    cache.set("a", b"3")
    cache.set("c", b"4")
    assert cache.get("b") is None
    assert cache.get("a") == b"3"


def test_max_entries_keeps_the_newest() -> None:
    cache = make_cache(FakeClock(), max_entries=4)
    for i in range(10):
        cache.set(f"k{i}", b"v")
    stats = cache.stats()
    assert (stats.cache_size, stats.evictions) == (4, 6)
    assert [cache.get(f"k{i}") for i in range(6, 10)] == [b"v"] * 4
    assert cache.get("k5") is None


# --- memory bound -------------------------------------------------------------


def test_entry_size_counts_key_value_and_overhead() -> None:
    assert entry_size_bytes("ab", b"xyz") == 2 + 3 + ENTRY_OVERHEAD_BYTES
    assert entry_size_bytes("é", b"") == 2 + ENTRY_OVERHEAD_BYTES  # UTF-8 bytes


def test_memory_cap_evicts_oldest_until_under_cap() -> None:
    cache = make_cache(FakeClock(), max_memory_bytes=350)
    for i in range(5):
        cache.set(f"k{i}", value_of_size(f"k{i}", 100))
    stats = cache.stats()
    assert (stats.cache_size, stats.evictions) == (3, 2)
    assert cache.memory_usage_bytes == 300
    assert stats.memory_usage_mb == 300 / BYTES_PER_MB
    assert stats.max_memory_mb == 350 / BYTES_PER_MB
    assert cache.get("k1") is None
    assert cache.get("k2") is not None


def test_large_value_evicts_several_small_ones() -> None:
    cache = make_cache(FakeClock(), max_memory_bytes=400)
    for i in range(4):
        cache.set(f"k{i}", value_of_size(f"k{i}", 100))
    cache.set("big", value_of_size("big", 250))
    assert cache.memory_usage_bytes == 350
    assert cache.stats().evictions == 3
    assert cache.get("k3") is not None


def test_overwrite_replaces_memory_instead_of_adding() -> None:
    cache = make_cache(FakeClock())
    cache.set("a", b"x" * 10)
    cache.set("a", b"x" * 30)
    assert cache.memory_usage_bytes == entry_size_bytes("a", b"x" * 30)


def test_value_larger_than_cap_is_rejected_and_old_value_dropped() -> None:
    cache = make_cache(FakeClock(), max_memory_bytes=200)
    cache.set("a", b"old")
    cache.set("b", b"keep")
    assert cache.set("a", b"x" * 200) is False
    assert cache.get("a") is None
    assert cache.get("b") == b"keep"
    stats = cache.stats()
    assert (stats.rejected, stats.evictions, stats.cache_size) == (1, 0, 1)


# --- stats, sweep, delete, clear ---------------------------------------------------


def test_stats_count_exactly() -> None:
    clock = FakeClock()
    cache = make_cache(clock, max_entries=2, max_memory_bytes=1000, ttl_seconds=5.0)
    cache.set("a", b"1")
    cache.set("b", b"2")
    cache.get("a")  # hit
    cache.get("zz")  # miss
    cache.set("c", b"3")  # evicts b
    cache.get("b")  # miss
    clock.advance(5.0)
    cache.get("a")  # expired: miss + expiration
    expected = CacheStats(
        cache_size=1,
        hits=1,
        misses=3,
        hit_rate_percent=25.0,
        evictions=1,
        expirations=1,
        rejected=0,
        memory_usage_mb=entry_size_bytes("c", b"3") / BYTES_PER_MB,
        max_entries=2,
        max_memory_mb=1000 / BYTES_PER_MB,
        ttl_seconds=5.0,
    )
    assert cache.stats() == expected


def test_hit_rate_is_zero_before_any_lookup() -> None:
    assert make_cache(FakeClock()).stats().hit_rate_percent == 0.0


def test_sweep_removes_only_expired_and_counts_expirations() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl_seconds=5.0)
    for key in ("a", "b", "c"):
        cache.set(key, b"v")
    cache.set("keep", b"v", ttl=100.0)
    clock.advance(6.0)
    assert cache.sweep_expired() == 3
    assert cache.sweep_expired() == 0
    stats = cache.stats()
    assert (stats.expirations, stats.cache_size, stats.misses) == (3, 1, 0)
    assert cache.memory_usage_bytes == entry_size_bytes("keep", b"v")


def test_delete_and_clear_release_memory() -> None:
    cache = make_cache(FakeClock())
    cache.set("a", b"1")
    cache.set("b", b"2")
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert cache.memory_usage_bytes == entry_size_bytes("b", b"2")
    cache.clear()
    assert (len(cache), cache.memory_usage_bytes) == (0, 0)


def test_non_positive_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        TTLLRUCache(max_entries=0)
    with pytest.raises(ValueError):
        TTLLRUCache(max_memory_bytes=0)


# --- thread safety ----------------------------------------------------------------------


def hammer(cache: TTLLRUCache, seed: int, ops: int, violations: list[str]) -> int:
    """Random set/get traffic; returns the number of gets, records broken invariants."""
    rng = random.Random(seed)
    gets = 0
    for _ in range(ops):
        key = f"k{rng.randrange(50)}"
        if rng.random() < 0.5:
            cache.set(key, key.encode() + b"=" * rng.randrange(1, 120))
            continue
        gets += 1
        value = cache.get(key)
        if value is not None and not value.startswith(key.encode() + b"="):
            violations.append(f"{key} returned {value[:10]!r}")
        stats = cache.stats()
        if stats.cache_size > 20 or stats.memory_usage_mb * BYTES_PER_MB > 2000:
            violations.append(f"limits exceeded: {stats}")
    return gets


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads far more often than the 5 ms default so races show up."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def run_hammer(cache: TTLLRUCache, seed: int, violations: list[str], gets: list[int]) -> None:
    """Thread body: an exception becomes a recorded violation, not a lost thread."""
    try:
        gets.append(hammer(cache, seed, 3000, violations))
    except Exception as exc:  # noqa: BLE001 - report any failure, do not lose it
        violations.append(f"thread {seed} raised {exc!r}")


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_threads_keep_invariants() -> None:
    cache = TTLLRUCache(max_entries=20, max_memory_bytes=2000, ttl_seconds=None)
    violations: list[str] = []
    gets: list[int] = []
    threads = [threading.Thread(target=run_hammer, args=(cache, seed, violations, gets)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert violations == []
    assert stats.hits + stats.misses == sum(gets)
    live = {f"k{i}": cache.get(f"k{i}") for i in range(50)}
    counted = sum(entry_size_bytes(k, v) for k, v in live.items() if v is not None)
    assert cache.memory_usage_bytes == counted
    assert len(cache) == sum(v is not None for v in live.values()) <= 20


class RecordingObserver:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def removed(self, reason: str, count: int) -> None:
        self.events.append(("removed", reason, count))

    def resized(self, entries: int, memory_bytes: int) -> None:
        self.events.append(("resized", entries))


def test_the_observer_hears_each_change_once_with_the_size_after_it():
    clock = FakeClock()
    observer = RecordingObserver()
    cache = TTLLRUCache(max_entries=2, ttl_seconds=10, clock=clock, observer=observer)
    for key in ("a", "b", "c"):  # "c" evicts "a": one removal, then one size report
        cache.set(key, b"v")
    assert observer.events == [("resized", 1), ("resized", 2), ("removed", "evicted", 1), ("resized", 2)]
    observer.events.clear()
    clock.now += 11
    assert cache.get("b") is None and cache.sweep_expired() == 1
    assert observer.events == [("removed", "expired", 1), ("resized", 1), ("removed", "expired", 1), ("resized", 0)]


def test_holds_looks_without_counting_or_reordering():
    from caching.lru import TTLLRUCache

    cache = TTLLRUCache(max_entries=2, ttl_seconds=60.0)
    cache.set("a", b"1")
    cache.set("b", b"2")
    assert cache.holds("a") and not cache.holds("zzz")
    cache.set("c", b"3")  # "a" is still the least recently used: holds() did not move it
    assert not cache.holds("a") and cache.stats().hits == 0 and cache.stats().misses == 0
