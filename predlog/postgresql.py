"""The log in PostgreSQL (``DATABASE_URL=postgresql://...``), shared by every instance of a
cluster: asyncpg's connection pool (DATABASE_POOL_SIZE connections per API worker). Migrations
run under a transaction-scoped advisory lock, so instances starting together apply each once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from predlog.entry import Answer, Row
from predlog.store import (
    Connected,
    insert_answers_sql,
    insert_sql,
    migrations,
)

CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 10.0
_CONTAINS = "strpos({}, {}) > 0"
# a hash anti-join (NOT IN over a large subquery is a plain subplan per answer beyond work_mem)
DELETE_ORPHAN_ANSWERS = (
    "DELETE FROM answers WHERE NOT EXISTS (SELECT 1 FROM predictions p WHERE p.answer_key = answers.answer_key)"
)
_MIGRATION_LOCK = 0x61726D6F72  # "armor": the advisory lock's key, any constant all instances share


class PostgreSQLStore(Connected[asyncpg.Pool]):
    backend = "postgresql"
    what = "PostgreSQL pool"
    postgres, contains = True, _CONTAINS

    def __init__(self, url: str, pool_size: int):
        super().__init__()
        self.url, self.pool_size = url, pool_size

    async def _connect(self) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=COMMAND_TIMEOUT_S,
        )

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            await _apply_migrations(conn)

    async def _disconnect(self, pool: asyncpg.Pool) -> None:
        await pool.close()

    async def write(self, rows: Sequence[Row], answers: Sequence[Answer] = ()) -> None:
        async with self._ready().acquire() as conn, conn.transaction():
            if answers:
                await conn.executemany(insert_answers_sql(True), answers)
            await conn.executemany(insert_sql(True), rows)

    async def delete_before(self, ts: float) -> int:
        async with self._ready().acquire() as conn, conn.transaction():
            status = await conn.execute("DELETE FROM predictions WHERE ts < $1", ts)
            await conn.execute(DELETE_ORPHAN_ANSWERS)
        return int(status.rsplit(" ", 1)[-1])

    async def schema_version(self) -> int:
        return int(await self._ready().fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return [tuple(record) for record in await self._ready().fetch(sql, *args)]


async def _apply_migrations(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
        for migration in migrations("postgresql"):
            if migration.version > current:
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)", migration.version, migration.name, time.time()
                )
