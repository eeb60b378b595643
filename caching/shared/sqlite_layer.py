"""A response layer shared by the worker processes of one machine: SQLite in WAL mode.

Why: with the memory backend each API worker had its own cache, so a repeat that landed on the
other worker (any client that opens a new connection per request) was a miss. A SQLite file in
the directory the workers of one ``bentoml serve`` share costs tens of microseconds per call,
needs no server, and its locking is made for several processes. Entries carry their expiry;
the entry count and the stored bytes are capped, the least recently read going first.

Like RedisCache it never raises: a locked or broken database is a miss, counted in ``errors``.
Every database call runs on the layer's own single thread (which also serialises the one
connection), so a locked database never stalls the event loop: the loop only awaits.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

logger = logging.getLogger("armor.cache")
_SCHEMA = """CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL, accessed REAL NOT NULL, size INTEGER NOT NULL)"""
OPEN_TIMEOUT_S = 10.0
_ENFORCE_EVERY = 64  # sets between limit checks: a COUNT/SUM per set would double the write cost


class MachineCache:
    """The SQLite response layer of one machine's API workers (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        max_entries: int,
        max_bytes: int,
        ttl_seconds: float,
        busy_timeout_ms: int = 50,
        clock: Callable[[], float] = time.time,
    ):
        self.path, self.max_entries, self.max_bytes, self.ttl = Path(path), max_entries, max_bytes, ttl_seconds
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one connection per process, used only from this thread
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="machine-cache")
        # Opening waits up to OPEN_TIMEOUT_S for the other workers opening the same file at the same
        # moment (switching to WAL and creating the table take a write lock); requests later wait
        # at most busy_timeout_ms and count a miss.
        self._db = sqlite3.connect(str(path), timeout=OPEN_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=OFF"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(_SCHEMA)
        self._db.execute("CREATE INDEX IF NOT EXISTS by_access ON entries (accessed)")
        self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self.hits = self.misses = self.errors = self.evictions = self.expirations = 0
        self.timeouts = 0  # a busy database waits at most busy_timeout_ms and then counts as an error
        self._sets = 0
        self.available = True

    async def _run(self, operation: Callable[[], Any]) -> Any:
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._thread, operation)
            self.available = True
            return result
        except (sqlite3.Error, RuntimeError) as exc:  # RuntimeError: used after close()
            if self.available:
                logger.warning("machine-shared cache unavailable (%s); local layer only", type(exc).__name__)
            self.available = False
            self.errors += 1
            return None

    def _get(self, key: str) -> bytes | None:
        now = self._clock()
        row = self._db.execute("SELECT value, expires FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[1] <= now:
            self._db.execute("DELETE FROM entries WHERE key = ? AND expires <= ?", (key, now))
            self.expirations += 1
            return None
        self._db.execute("UPDATE entries SET accessed = ? WHERE key = ?", (now, key))
        return bytes(row[0])

    async def get(self, key: str) -> bytes | None:
        value = await self._run(lambda: self._get(key))
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value if value is None else bytes(value)

    def _set(self, key: str, value: bytes, ttl: float) -> bool:
        now = self._clock()
        self._db.execute(
            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)", (key, value, now + ttl, now, len(key) + len(value))
        )
        self._sets += 1
        if self._sets % _ENFORCE_EVERY == 0:
            self._enforce_limits()
        return True

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if len(value) > self.max_bytes:
            return False
        return bool(await self._run(lambda: self._set(key, value, ttl or self.ttl)))

    def _totals(self) -> tuple[int, int]:
        count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
        return int(count), int(size)

    def _enforce_limits(self) -> None:
        count, size = self._totals()
        while count > self.max_entries or size > self.max_bytes:
            # over the entry cap: drop exactly the excess; over the byte cap: drop 5 % at a time
            excess = count - self.max_entries if count > self.max_entries else max(1, count // 20)
            self._db.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM entries ORDER BY accessed LIMIT ?)", (excess,)
            )
            before, (count, size) = count, self._totals()
            self.evictions += before - count

    def _sweep(self) -> int:
        removed: int = self._db.execute("DELETE FROM entries WHERE expires <= ?", (self._clock(),)).rowcount
        self._enforce_limits()
        return removed

    async def sweep_expired(self) -> int:
        """Drop expired entries and enforce the caps; the count of expired entries removed."""
        removed = await self._run(self._sweep) or 0
        self.expirations += removed
        return removed

    async def size(self) -> tuple[int, int]:
        """(entries, bytes) stored for all workers."""
        return await self._run(self._totals) or (0, 0)

    async def ping(self) -> bool:
        return await self._run(lambda: self._db.execute("SELECT 1").fetchone()) is not None

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
            "evictions": self.evictions,
            "expirations": self.expirations,
        }

    async def close(self) -> None:
        """Close the connection (on its thread) and end the thread."""
        await self._run(self._db.close)
        self._thread.shutdown(wait=True)
