"""caching.shared.sqlite_layer: the SQLite layer shared by the worker processes of one machine."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path

from caching import LayeredCache, MachineCache, TTLLRUCache


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(path: Path, clock=None, **limits) -> MachineCache:
    options = {"max_entries": 100, "max_bytes": 1_000_000, "ttl_seconds": 60} | limits
    return MachineCache(path, clock=clock or Clock(), **options)


def _writer(path: str) -> None:
    async def write_and_close() -> None:
        layer = cache(Path(path))
        await layer.set("from-child", b"hello")
        await layer.close()  # a worker's shutdown writes its queue

    asyncio.run(write_and_close())


def test_a_value_written_by_another_process_is_read(tmp_path):
    db = tmp_path / "c.sqlite"
    reader = cache(db)
    child = multiprocessing.get_context("fork").Process(target=_writer, args=(str(db),))
    child.start()
    child.join(10)
    assert asyncio.run(reader.get("from-child")) == b"hello"
    assert (reader.hits, reader.misses) == (1, 0)


def test_ttl_expiry_with_injected_clock(tmp_path):
    clock = Clock()
    layer = cache(tmp_path / "c.sqlite", clock)
    asyncio.run(layer.set("k", b"v", ttl=10))
    clock.now += 9.9
    assert asyncio.run(layer.get("k")) == b"v"
    clock.now += 0.2
    assert asyncio.run(layer.get("k")) is None
    assert asyncio.run(layer.sweep_expired()) == 1 and layer.expirations == 1
    assert asyncio.run(layer.size())[0] == 0


def test_entry_cap_drops_least_recently_read(tmp_path):
    clock = Clock()
    layer = cache(tmp_path / "c.sqlite", clock, max_entries=80, ttl_seconds=10_000)
    for i in range(64):
        clock.now += 1
        asyncio.run(layer.set(f"k{i}", b"x"))
    clock.now += 1
    asyncio.run(layer.get("k0"))  # k0 is now the most recently read
    for i in range(64, 128):
        clock.now += 1
        asyncio.run(layer.set(f"k{i}", b"x"))
    asyncio.run(layer.sweep_expired())  # enforces the caps, as the sweeper and every ENFORCE_EVERY sets do
    entries, _ = asyncio.run(layer.size())
    assert entries == 80 and layer.evictions == 48  # k1..k48, the least recently read
    assert asyncio.run(layer.get("k0")) == b"x" and asyncio.run(layer.get("k1")) is None


def test_byte_cap(tmp_path):
    layer = cache(tmp_path / "c.sqlite", max_bytes=10_000)
    for i in range(128):
        asyncio.run(layer.set(f"k{i:03d}", b"x" * 200))
    asyncio.run(layer.sweep_expired())
    assert asyncio.run(layer.size())[1] <= 10_000 and layer.evictions > 0
    assert asyncio.run(layer.set("huge", b"x" * 20_000)) is False


def test_broken_database_is_a_counted_miss_never_an_error(tmp_path):
    layer = cache(tmp_path / "c.sqlite")
    asyncio.run(layer.close())
    assert asyncio.run(layer.get("k")) is None and asyncio.run(layer.set("k", b"v")) is False
    assert layer.errors == 2 and layer.available is False


def test_two_workers_local_layers_share_through_it(tmp_path):
    db = tmp_path / "c.sqlite"
    first, second = (LayeredCache(TTLLRUCache(), cache(db)) for _ in range(2))
    asyncio.run(first.set("answer", b"42"))
    first.shared.flush()  # as the event loop does FLUSH_AFTER_S later
    assert asyncio.run(second.get("answer")) == b"42"
    stats = asyncio.run(second.stats())
    assert stats["backend"] == "machine" and stats["shared"]["hits"] == 1


def test_peek_reads_without_counting_a_hit_or_miss_or_marking_it_read(tmp_path):
    clock = Clock()
    layer = cache(tmp_path / "c.sqlite", clock, max_entries=2, ttl_seconds=10_000)
    for key in ("peeked", "read", "newest"):
        clock.now += 1
        asyncio.run(layer.set(key, b"x"))
    clock.now += 1
    assert asyncio.run(layer.peek("peeked")) == b"x" and asyncio.run(layer.peek("absent")) is None
    assert asyncio.run(layer.get("read")) == b"x"
    assert (layer.hits, layer.misses) == (1, 0)
    asyncio.run(layer.sweep_expired())  # the entry cap: the least recently read goes
    assert asyncio.run(layer.peek("peeked")) is None and asyncio.run(layer.peek("read")) == b"x"


def test_fill_local_copies_a_shared_hit_into_the_local_layer_uncounted(tmp_path):
    db = tmp_path / "c.sqlite"
    first, second = (LayeredCache(TTLLRUCache(), cache(db)) for _ in range(2))
    asyncio.run(first.set("answer", b"42"))
    first.shared.flush()
    assert asyncio.run(second.fill_local("answer")) is True and second.local.holds("answer")
    assert asyncio.run(second.fill_local("absent")) is False
    stats = asyncio.run(second.stats())
    assert (stats["hits"], stats["misses"], stats["shared"]["hits"], stats["shared"]["misses"]) == (0, 0, 0, 0)


def test_opening_waits_for_another_worker_holding_the_file_instead_of_failing(tmp_path):
    # Two API workers start together: one holds the write lock while it switches the file to WAL.
    # The other used to die with "database is locked" after 50 ms (issue 14, item 4).
    import sqlite3
    import threading
    import time

    db = tmp_path / "c.sqlite"
    holder = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    opened = cache(db)
    assert time.monotonic() - started >= 0.25
    asyncio.run(opened.set("k", b"v"))
    assert asyncio.run(opened.get("k")) == b"v"
    release.join()


def test_a_locked_database_is_a_miss_at_once_never_a_wait(tmp_path):
    # Another worker holds the write lock: the request path gives up at once (counted as busy)
    # instead of waiting on the event loop; reads still work (WAL: readers never wait).
    import sqlite3
    import time

    db = tmp_path / "c.sqlite"
    layer = cache(db)
    asyncio.run(layer.set("old", b"v"))
    holder = sqlite3.connect(str(db), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    started = time.perf_counter()
    assert asyncio.run(layer.set("k", b"v")) is True  # queued
    assert layer.flush() is False
    assert time.perf_counter() - started < 0.05 and (layer.busy, layer.errors) == (1, 0)
    holder.execute("COMMIT")
    assert asyncio.run(layer.set("k", b"v")) is True and layer.flush() is True
    assert asyncio.run(layer.get("k")) == b"v"


def test_the_caps_are_enforced_in_the_background_every_so_many_sets(tmp_path):
    from caching.shared.sqlite_layer import ENFORCE_EVERY

    layer = cache(tmp_path / "c.sqlite", max_entries=10, ttl_seconds=10_000)

    async def fill() -> None:
        for i in range(ENFORCE_EVERY):
            await layer.set(f"k{i}", b"x")
        await asyncio.wrap_future(layer._enforcing)  # type: ignore[arg-type]  # noqa: SLF001

    asyncio.run(fill())
    assert asyncio.run(layer.size())[0] == 10 and layer.evictions == ENFORCE_EVERY - 10


def test_writes_are_gathered_into_one_transaction_and_seen_by_others_after_the_flush(tmp_path):
    from caching.shared.sqlite_layer import FLUSH_AFTER_S

    db = tmp_path / "c.sqlite"
    writer, reader = cache(db), cache(db)

    async def scenario() -> tuple[bytes | None, bytes | None, bytes | None]:
        for i in range(10):
            await writer.set(f"k{i}", b"v")
        own, others_before = await writer.get("k3"), await reader.get("k3")
        await asyncio.sleep(FLUSH_AFTER_S * 3)
        return own, others_before, await reader.get("k3")

    statements: list[str] = []
    writer._db.set_trace_callback(statements.append)  # noqa: SLF001
    own, others_before, others_after = asyncio.run(scenario())
    assert (own, others_before, others_after) == (b"v", None, b"v")
    assert sum(s.startswith("BEGIN") for s in statements) == 1  # ten sets, one transaction


def test_close_ends_the_layers_thread(tmp_path):
    import threading

    before = set(threading.enumerate())
    layer = cache(tmp_path / "c.sqlite")
    asyncio.run(layer.sweep_expired())  # maintenance starts the thread
    own = [t for t in set(threading.enumerate()) - before if t.name.startswith("machine-cache")]
    assert len(own) == 1
    asyncio.run(layer.close())
    assert not own[0].is_alive()
