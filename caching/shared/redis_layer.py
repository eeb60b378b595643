"""Shared cache layer on Redis that degrades to "always miss" instead of failing.

The shared layer is an optimisation: a prediction must never fail or slow down
because Redis is slow or gone. Every call is capped at ``timeout_s``, failures
are counted rather than raised, and after a failure Redis is left alone for a
growing back-off so a dead server is not hammered on every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import redis.asyncio as redis_asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

# Marks a call that did not reach Redis or failed; distinct from a None reply.
logger = logging.getLogger("armor.cache")
_FAILED: Any = object()

# Both mean "Redis did not answer in time": ours from asyncio.wait_for, redis-py's
# from socket_timeout. (asyncio.TimeoutError is the builtin TimeoutError on 3.11.)
_TIMEOUT_ERRORS = (TimeoutError, redis.exceptions.TimeoutError)


def make_client(url: str, timeout_s: float) -> redis_asyncio.Redis:
    """Client whose socket timeouts match the cap, retrying only a dead socket.

    redis-py's default retries sleep with back-off, which would blow the time
    cap; this layer has its own back-off instead. The single immediate retry on
    ConnectionError is what replaces a pooled socket that died while Redis
    restarted: redis-py drops the failed connection and the retry dials a new
    one, so the first call after a restart succeeds. Timeouts are not retried.
    """
    return redis_asyncio.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
    )


class RedisCache:
    """Async get/set of ``bytes`` values on Redis that never raises.

    ``available`` is True only when the last attempted call succeeded (False
    before the first call). A failing call takes at most about 2 x ``timeout_s``:
    the command, then dropping the pool's dead sockets. Counters: ``hits``, ``misses``, ``errors``,
    ``timeouts``, ``skipped`` (calls not sent because of the back-off).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.05,
        key_prefix: str = "armor:",
        ttl_seconds: float | None = 300.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = make_client(url, timeout_s)
        self._timeout_s = timeout_s
        self._key_prefix = key_prefix
        self._ttl_seconds = ttl_seconds
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._clock = clock
        self._backoff_s = backoff_initial_s
        self._skip_until = float("-inf")
        self.available = False
        self.last_error: str | None = None
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.timeouts = 0
        self.skipped = 0

    async def get(self, key: str) -> bytes | None:
        """Stored value, or None on a miss or on any failure."""
        value = await self._fetch(key)
        if value is _FAILED:
            return None
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return bytes(value)

    async def peek(self, key: str) -> bytes | None:
        """Like ``get`` (same time cap, failure counting and back-off), but counted as neither a
        hit nor a miss: a look ahead of a request (the warm-up's), not a request."""
        value = await self._fetch(key)
        return None if value is _FAILED or value is None else bytes(value)

    async def _fetch(self, key: str) -> Any:
        """Redis's GET through ``_call``: the value, None, or _FAILED."""
        return await self._call(lambda: self._client.get(self._full_key(key)))

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` (``ttl`` overrides the default); False on any failure."""
        expiry_ms = self._expiry_ms(ttl)
        reply = await self._call(lambda: self._client.set(self._full_key(key), value, px=expiry_ms))
        return reply is not _FAILED and bool(reply)

    async def ping(self) -> bool:
        """Check Redis now, ignoring the back-off: a status endpoint must report
        what it checked, not what it remembers."""
        reply = await self._call(self._client.ping, respect_backoff=False)
        return reply is not _FAILED and bool(reply)

    async def sweep_expired(self) -> int:
        """Nothing to do: Redis expires its own keys (every set carries its TTL)."""
        return 0

    async def stats(self) -> dict[str, Any]:
        """Counters and state for status endpoints (no URL: it may hold a password)."""
        return {
            "backend": "redis",
            "available": self.available,
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "skipped": self.skipped,
            "last_error": self.last_error,
            "timeout_ms": self._timeout_s * 1000.0,
            "next_backoff_s": self._backoff_s,
            "key_prefix": self._key_prefix,
        }

    async def close(self) -> None:
        """Close the client and its connection pool."""
        with suppress(Exception):
            await self._client.aclose()

    def _full_key(self, key: str) -> str:
        return self._key_prefix + key

    def _expiry_ms(self, ttl: float | None) -> int | None:
        effective = self._ttl_seconds if ttl is None else ttl
        return None if effective is None else max(1, round(effective * 1000))

    async def _call(self, command: Callable[[], Awaitable[Any]], respect_backoff: bool = True) -> Any:
        """Run one command under the time cap; ``_FAILED`` if skipped or failed."""
        if respect_backoff and self._clock() < self._skip_until:
            self.skipped += 1
            return _FAILED
        try:
            reply = await asyncio.wait_for(command(), self._timeout_s)
        except _TIMEOUT_ERRORS as exc:
            self.timeouts += 1
            await self._on_failure(exc)
            return _FAILED
        except Exception as exc:  # noqa: BLE001 - any failure must degrade to a miss
            self.errors += 1
            await self._on_failure(exc)
            return _FAILED
        self._on_success()
        return reply

    def _on_success(self) -> None:
        if not self.available and self.last_error is not None:
            logger.warning("Redis reachable again")
        self.available = True
        self._backoff_s = self._backoff_initial_s
        self._skip_until = float("-inf")

    async def _on_failure(self, exc: Exception) -> None:
        if self.available or self.last_error is None:  # log the transition, not every failure
            logger.warning(
                "Redis unavailable (%s); serving from the local cache, retrying in %.1f s",
                type(exc).__name__,
                self._backoff_s,
            )
        self.available = False
        self.last_error = type(exc).__name__
        self._skip_until = self._clock() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2.0, self._backoff_max_s)
        await self._drop_connections()

    async def _drop_connections(self) -> None:
        """Close pooled sockets so the next attempt dials a fresh connection.

        After a Redis restart, idle pooled sockets are dead; without this each
        of them would fail once more before the pool replaced it.
        """
        with suppress(Exception):
            await asyncio.wait_for(self._client.connection_pool.disconnect(), self._timeout_s)
