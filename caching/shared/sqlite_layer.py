"""A response layer shared by the worker processes of one machine: SQLite in WAL mode.

Why: with the memory backend each API worker had its own cache, so a repeat that landed on the
other worker (any client that opens a new connection per request) was a miss. A SQLite file in
a directory the workers of one ``bentoml serve`` share needs no server, and its locking is made
for several processes. Entries carry their expiry; the entry count and the stored bytes are
capped, the least recently read going first.

Never blocks the event loop, never raises:
- ``get`` is one indexed statement (tens of microseconds), run inline: in WAL mode a reader
  never waits. Handing each call to a thread cost more than the call itself (the hand-off and the
  GIL convoy it causes: issue 12's profile of the cold path).
- Writes are gathered: ``set`` (and a hit's "recently read" mark) is queued, and the queue is
  written in one transaction ``FLUSH_AFTER_S`` later, or at once when ``FLUSH_AT`` writes wait.
  One autocommit transaction per request was ~9 % of an API worker's CPU on the cold path
  (issue 12's profile); the other workers see an answer up to ``FLUSH_AFTER_S`` later, and this
  worker sees its own queue at once. The flush runs inline with a busy timeout of 0: a flush that
  finds another worker writing gives up at once and counts as ``busy`` (those answers are simply
  not shared). A worker stopped without ``close`` loses at most its last ``FLUSH_AFTER_S`` of
  writes, which only costs the other workers a miss.
- The heavy part, dropping expired entries and enforcing the caps (a scan of the access index),
  runs on the layer's own thread with its own connection: from the sweeper, and in the
  background after every ``ENFORCE_EVERY`` sets so the caps hold between sweeps; a request never
  waits for it.
- A locked or broken database is a miss, counted in ``busy`` or ``errors``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger("armor.cache")
_SCHEMA = """CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL, accessed REAL NOT NULL, size INTEGER NOT NULL)"""
# (accessed, size) covers the eviction order and the byte total: enforcing the caps reads this
# index, not the values (a full table scan read every stored body, ~30 MB at 10,000 entries).
_INDEX = "CREATE INDEX IF NOT EXISTS by_access_size ON entries (accessed, size)"
OPEN_TIMEOUT_S = 10.0
MAINTENANCE_BUSY_TIMEOUT_MS = 1000  # the maintenance thread may wait for the other workers' writes
ENFORCE_EVERY = 256  # sets between background cap checks
FLUSH_AFTER_S = 0.02  # queued writes wait at most this long
FLUSH_AT = 128  # ... or until this many are queued
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)  # another connection holds the lock

T = TypeVar("T")


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    # Opening waits up to OPEN_TIMEOUT_S for the other workers opening the same file at the same
    # moment (switching to WAL and creating the table take a write lock).
    db = sqlite3.connect(str(path), timeout=OPEN_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    for statement in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF", _SCHEMA, _INDEX):
        db.execute(statement)
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return db


class MachineCache:
    """The SQLite response layer of one machine's API workers (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        max_entries: int,
        max_bytes: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
    ):
        self.path, self.max_entries, self.max_bytes, self.ttl = Path(path), max_entries, max_bytes, ttl_seconds
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(self.path, busy_timeout_ms=0)  # the request path: never waits
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="machine-cache")
        self._maintenance: sqlite3.Connection | None = None  # opened on the thread, used only there
        self._enforcing: Future[Any] | None = None
        self.hits = self.misses = self.errors = self.evictions = self.expirations = 0
        self.busy = 0  # writes given up because another worker was writing
        self.timeouts = 0  # kept for the shared-layer interface: this layer never waits, so never times out
        self._sets = 0
        self._queued: dict[str, tuple[bytes, float, float, int]] = {}  # key -> value, expires, accessed, size
        self._read: dict[str, float] = {}  # key -> when a hit read it (the eviction order)
        self._flushing: asyncio.TimerHandle | None = None
        self.available = True

    def _run(self, operation: Callable[[], T]) -> T | None:
        try:
            result = operation()
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) in _BUSY:
                self.busy += 1
                return None
            self._failed(exc)
            return None
        self.available = True
        return result

    def _failed(self, exc: Exception) -> None:
        if self.available:
            logger.warning("machine-shared cache unavailable (%s); local layer only", type(exc).__name__)
        self.available = False
        self.errors += 1
        return None

    def _get(self, key: str, now: float) -> bytes | None:
        queued = self._queued.get(key)
        if queued is not None:
            return queued[0] if queued[1] > now else None
        row = self._db.execute("SELECT value, expires FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None or row[1] <= now:
            return None  # the sweep removes an expired one
        return bytes(row[0])

    async def get(self, key: str) -> bytes | None:
        now = self._clock()
        value = await self.peek(key, now)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._read[key] = now
        self._flush_soon()
        return value

    async def peek(self, key: str, now: float | None = None) -> bytes | None:
        """Like ``get`` (a failure is counted the same way), but counted as neither a hit nor a
        miss and not marked as read (the eviction order stays the askers'): a look ahead of a
        request (the warm-up's), not a request."""
        at = self._clock() if now is None else now
        return self._run(lambda: self._get(key, at))

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Queue the entry (see the module doc); False when it is larger than the byte cap or the
        database is broken."""
        if len(value) > self.max_bytes or not self._usable():
            return False
        now = self._clock()
        self._queued[key] = (value, now + (ttl or self.ttl), now, len(key) + len(value))
        self._flush_soon()
        return True

    def _usable(self) -> bool:
        if self.available:
            return True
        return self._run(lambda: self._db.execute("SELECT 1").fetchone()) is not None

    def _flush_soon(self) -> None:
        if len(self._queued) + len(self._read) >= FLUSH_AT:
            self.flush()
            return
        if self._flushing is None:
            try:
                self._flushing = asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self.flush)
            except RuntimeError:  # no event loop (a synchronous caller): write now
                self.flush()

    def flush(self) -> bool:
        """Write the queued entries and read marks in one transaction; False when another worker
        was writing (counted as ``busy``) or the database failed (``errors``): the queue is
        dropped either way, as a cache may."""
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        entries, read = self._queued, self._read
        self._queued, self._read = {}, {}
        if not entries and not read:
            return True
        written = bool(self._run(lambda: self._write(entries, read)))
        if written:
            before, self._sets = self._sets, self._sets + len(entries)
            if self._sets // ENFORCE_EVERY > before // ENFORCE_EVERY:
                self._enforce_in_background()
        return written

    def _write(self, entries: dict[str, tuple[bytes, float, float, int]], read: dict[str, float]) -> bool:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)", [(k, *row) for k, row in entries.items()]
            )
            self._db.executemany("UPDATE entries SET accessed = ? WHERE key = ?", [(t, k) for k, t in read.items()])
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return True

    # --- maintenance, on the layer's thread -----------------------------------------------------

    def _maintenance_db(self) -> sqlite3.Connection:
        if self._maintenance is None:
            self._maintenance = _connect(self.path, MAINTENANCE_BUSY_TIMEOUT_MS)
        return self._maintenance

    def _totals(self, db: sqlite3.Connection) -> tuple[int, int]:
        count, size = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries INDEXED BY by_access_size"
        ).fetchone()
        return int(count), int(size)

    def _enforce_limits(self) -> int:
        """Drop the least recently read entries until both caps hold; the number dropped."""
        db = self._maintenance_db()
        count, size = self._totals(db)
        dropped = 0
        while count > self.max_entries or size > self.max_bytes:
            # over the entry cap: drop exactly the excess; over the byte cap: drop 5 % at a time
            excess = count - self.max_entries if count > self.max_entries else max(1, count // 20)
            db.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM entries ORDER BY accessed LIMIT ?)", (excess,)
            )
            before, (count, size) = count, self._totals(db)
            dropped += before - count
        return dropped

    def _sweep(self) -> tuple[int, int]:
        db = self._maintenance_db()
        expired: int = db.execute("DELETE FROM entries WHERE expires <= ?", (self._clock(),)).rowcount
        return expired, self._enforce_limits()

    def _on_thread(self, operation: Callable[[], T]) -> Future[T]:
        return self._thread.submit(operation)

    def _enforce_in_background(self) -> None:
        if self._enforcing is not None and not self._enforcing.done():
            return  # one at a time
        try:
            self._enforcing = self._on_thread(self._enforce_limits)
        except RuntimeError:  # closed
            return
        self._enforcing.add_done_callback(self._count_enforced)

    def _count_enforced(self, done: Future[int]) -> None:
        try:
            self.evictions += done.result()
        except (sqlite3.Error, RuntimeError) as exc:
            self._failed(exc)

    async def _maintain(self, operation: Callable[[], T]) -> T | None:
        self.flush()  # maintenance sees every write made so far
        try:
            return await asyncio.wrap_future(self._on_thread(operation))
        except (sqlite3.Error, RuntimeError) as exc:  # RuntimeError: used after close()
            self._failed(exc)
            return None

    async def sweep_expired(self) -> int:
        """Drop expired entries and enforce the caps (on the layer's thread); the count of expired
        entries removed."""
        swept = await self._maintain(self._sweep)
        if swept is None:
            return 0
        expired, evicted = swept
        self.expirations += expired
        self.evictions += evicted
        return expired

    async def size(self) -> tuple[int, int]:
        """(entries, bytes) stored for all workers."""
        return await self._maintain(lambda: self._totals(self._maintenance_db())) or (0, 0)

    async def ping(self) -> bool:
        return self._run(lambda: self._db.execute("SELECT 1").fetchone()) is not None

    async def stats(self) -> dict[str, Any]:
        entries, size = await self.size()
        return {
            "backend": "machine",
            "available": self.available,
            "path": str(self.path),
            "entries": entries,
            "memory_usage_mb": size / 1e6,
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
            "busy": self.busy,
            "evictions": self.evictions,
            "expirations": self.expirations,
        }

    async def close(self) -> None:
        """Write the queue, close both connections and end the thread."""
        await self._maintain(lambda: self._maintenance.close() if self._maintenance is not None else None)
        self._thread.shutdown(wait=True)
        self._run(self._db.close)
