"""The rate limit's count (RATE_LIMIT_PER_MINUTE): at most N requests per client in any rolling
60 s, and N means N for the whole service, not per API worker.

- ``SlidingWindow``: in one process (the in-process app of the tests and the plain baseline).
- ``MachineWindow``: every API worker of one ``bentoml serve`` counts in one SQLite file beside
  the directory the serve shares with its workers (as the hop's sockets: runners/hop.py). SQLite's
  own locking serialises the workers' check-and-count; one short write transaction per admitted
  request (~0.1 ms, WAL, synchronous off: a count lost in a crash only forgives a few requests).
- ``RedisWindow``: with CACHE_BACKEND=redis, every instance counts in one sorted set per client,
  checked and counted by one Lua script (atomic on the server). When Redis does not answer
  within its timeout the instance's own window decides, for ``RedisWindow.BACK_OFF_S`` before Redis
  is asked again (a frozen Redis costs one timeout a second, not one a request): the limit
  degrades to per instance, it is never lifted.

Each answers ``admit(client)``: None when admitted (and counted), else the seconds until the
client's oldest request in the window leaves it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import redis.exceptions

from caching.shared.redis_layer import make_client
from settings import RedisSettings

logger = logging.getLogger("armor.api")
WINDOW_S = 60.0
MAX_TRACKED_CLIENTS = 10_000  # least recently seen clients are forgotten beyond this (memory bound)


class RateLimiter(Protocol):
    limit: int

    async def admit(self, client: str) -> float | None: ...


class SlidingWindow:
    """At most ``limit`` events per client in any ``window_s``, in this process; the clients
    tracked are bounded."""

    def __init__(self, limit: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def admit_now(self, client: str) -> float | None:
        now = self._clock()
        events = self._events.pop(client, None) or deque()
        while events and events[0] <= now - self.window_s:
            events.popleft()
        self._events[client] = events
        if len(self._events) > MAX_TRACKED_CLIENTS:
            self._events.popitem(last=False)
        if len(events) >= self.limit:
            return events[0] + self.window_s - now
        events.append(now)
        return None

    async def admit(self, client: str) -> float | None:
        return self.admit_now(client)


_SCHEMA = "CREATE TABLE IF NOT EXISTS events (client TEXT NOT NULL, at REAL NOT NULL)"
_INDEX = "CREATE INDEX IF NOT EXISTS by_client ON events (client, at)"
PRUNE_EVERY = 1024  # admissions between dropping every client's expired events
BUSY_TIMEOUT_S = 1.0


class MachineWindow:
    """The sliding window of every process that opens ``path()`` (the API workers of one serve);
    the file is opened at the first admission (in the worker, not where the app is built)."""

    def __init__(
        self, limit: int, path: Callable[[], Path], window_s: float = WINDOW_S, clock: Callable[[], float] = time.time
    ):
        self.limit, self.window_s, self._clock, self._path = limit, window_s, clock, path
        self._db: sqlite3.Connection | None = None
        self._admitted = 0

    def _open(self) -> sqlite3.Connection:
        path = self._path()
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        for statement in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF", _SCHEMA, _INDEX):
            db.execute(statement)
        return db

    def admit_now(self, client: str) -> float | None:
        now = self._clock()
        since = now - self.window_s
        if self._db is None:
            self._db = self._open()
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # one writer at a time across the workers: check and count together
        try:
            db.execute("DELETE FROM events WHERE client = ? AND at <= ?", (client, since))
            count, oldest = db.execute("SELECT COUNT(*), MIN(at) FROM events WHERE client = ?", (client,)).fetchone()
            if count >= self.limit:
                return float(oldest) + self.window_s - now
            db.execute("INSERT INTO events VALUES (?, ?)", (client, now))
            self._admitted += 1
            if self._admitted % PRUNE_EVERY == 0:  # clients that stopped calling
                db.execute("DELETE FROM events WHERE at <= ?", (since,))
            return None
        finally:
            db.execute("COMMIT")

    async def admit(self, client: str) -> float | None:
        return self.admit_now(client)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# KEYS[1]: the client's sorted set; ARGV: now (s), window (s), limit, a unique member.
# Returns -1 when admitted (and counted), else the seconds until the oldest event leaves.
_ADMIT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return '-1'
"""


class RedisWindow:
    """The sliding window of every instance on one Redis; ``fallback`` decides when Redis fails."""

    PREFIX = "armor:rate:"
    BACK_OFF_S = 1.0

    def __init__(
        self,
        limit: int,
        redis_settings: RedisSettings,
        fallback: RateLimiter,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.time,
    ):
        self.limit, self.window_s, self._clock, self.fallback = limit, window_s, clock, fallback
        self._client = make_client(redis_settings.url, redis_settings.timeout_s)
        self._script = self._client.register_script(_ADMIT)
        self._failed_at = -self.BACK_OFF_S

    async def admit(self, client: str) -> float | None:
        if time.monotonic() - self._failed_at < self.BACK_OFF_S:
            return await self.fallback.admit(client)
        try:
            answer = await self._script(
                keys=[self.PREFIX + client], args=[self._clock(), self.window_s, self.limit, uuid.uuid4().hex]
            )
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._failed_at = time.monotonic()
            logger.warning("rate limit: Redis failed (%s); this instance's own window decides", type(exc).__name__)
            return await self.fallback.admit(client)
        wait = float(answer)
        return None if wait < 0 else wait


def machine_path(shared_dir: str) -> Path:
    """The count of this ``bentoml serve``: beside its shared directory, under its PID (every
    worker's parent), so two serves never share one."""
    return Path(shared_dir).parent / "armor_rate_limit" / f"{os.getppid()}.sqlite"


def build_limiter(limit: int, shared_dir: str | None, redis_settings: RedisSettings | None) -> RateLimiter:
    """Redis when configured (over the machine's or the process's window), else the machine's
    window under ``bentoml serve`` (``shared_dir``), else this process's."""
    local: RateLimiter = (
        MachineWindow(limit, lambda: machine_path(shared_dir)) if shared_dir is not None else SlidingWindow(limit)
    )
    return RedisWindow(limit, redis_settings, local) if redis_settings is not None else local
