"""The log in a SQLite file (the default): aiosqlite (each connection's calls on a thread of its
own), WAL so the API workers of one machine write and read the file at once, ``busy_timeout`` so
a writer waits for another's transaction instead of failing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from predlog.entry import Answer, Row
from predlog.store import (
    Connected,
    insert_answers_sql,
    insert_sql,
    migrations,
)

BUSY_TIMEOUT_MS = 5000
# The writer's commits copy the WAL back into the file every this many pages (SQLite's default is
# 1,000, 4 MB). A new answer dirties a random page of the answers' key index; between two
# checkpoints each page is copied back once however often it was written, so a larger WAL copies
# fewer pages: new answers written to a growing file, 20,000 at a time (500 a transaction), took
# 20.0-20.2 us a row at the fifth 20,000 with 1,000 pages and 13.0-14.8 us with 10,000 (user +
# system CPU, two runs each alternating: `python -m loadtests.predlog_keys --keys served --rounds 5
# --checkpoint-pages N`). The WAL is truncated back to JOURNAL_LIMIT_BYTES after a checkpoint.
CHECKPOINT_PAGES = 10_000
JOURNAL_LIMIT_BYTES = 64 << 20
WAL_RETRY_S = 0.02
# Rows per INSERT statement: 400 x 8 columns = 3,200 parameters, 400 answers x 8 the same (SQLite
# allows 32,766 since 3.32).
# One statement per chunk, not executemany: executemany releases and retakes the GIL around every
# row's sqlite3_step, and each retake waits for the event loop's thread to give the GIL up (up to
# the 5 ms switch interval when it is busy): a 500-row batch then took seconds and forced a GIL
# switch on the request path every few ms. A multi-row INSERT is one step per chunk.
INSERT_CHUNK_ROWS = 400
_CONTAINS = "instr({}, {}) > 0"
# SQLite makes the subquery's keys a temporary index once (a correlated NOT EXISTS would scan the rows per answer)
DELETE_ORPHAN_ANSWERS = "DELETE FROM answers WHERE answer_key NOT IN (SELECT answer_key FROM predictions)"


class SQLiteStore(Connected[aiosqlite.Connection]):
    backend = "sqlite"
    what = "SQLite file"
    postgres, contains = False, _CONTAINS

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    async def _connect(self) -> aiosqlite.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return await aiosqlite.connect(self.path, isolation_level=None)  # transactions are explicit

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await _wal(db)
        await db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
        await db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
        await db.execute(f"PRAGMA journal_size_limit = {JOURNAL_LIMIT_BYTES}")
        await _apply_migrations(db)

    async def _disconnect(self, db: aiosqlite.Connection) -> None:
        await db.close()

    async def write(self, rows: Sequence[Row], answers: Sequence[Answer] = ()) -> None:
        db = self._ready()
        async with _immediate(db):
            await _insert_chunks(db, insert_answers_sql, answers)
            await _insert_chunks(db, insert_sql, rows)

    async def delete_before(self, ts: float) -> int:
        db = self._ready()
        async with _immediate(db):
            deleted = (await db.execute("DELETE FROM predictions WHERE ts < ?", (ts,))).rowcount
            await db.execute(DELETE_ORPHAN_ANSWERS)
        return deleted

    async def schema_version(self) -> int:
        return await _version(self._ready())

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._ready().execute(sql, tuple(args)) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]


@contextlib.asynccontextmanager
async def _immediate(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """One transaction that takes the write lock first (``BEGIN IMMEDIATE``: a second writer waits
    ``busy_timeout`` for it rather than failing at its first write); rolled back on any exception."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")


async def _insert_chunks(
    db: aiosqlite.Connection, sql: Callable[[bool, int], str], rows: Sequence[tuple[Any, ...]]
) -> None:
    for start in range(0, len(rows), INSERT_CHUNK_ROWS):
        chunk = rows[start : start + INSERT_CHUNK_ROWS]
        await db.execute(sql(False, len(chunk)), [value for row in chunk for value in row])


async def _version(db: aiosqlite.Connection) -> int:
    async with db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _wal(db: aiosqlite.Connection) -> None:
    """WAL mode (kept in the file). Switching a new file to it takes the file to itself, and SQLite
    answers "database is locked" at once, without its busy handler, to a connection that asks
    while another switches it: three processes opening a new file together (the writer process and
    two API workers) failed 41-43 times in 300 here. So the switch is retried for BUSY_TIMEOUT_MS."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            await asyncio.sleep(WAL_RETRY_S)


async def _apply_migrations(db: aiosqlite.Connection) -> None:
    """Apply the migrations newer than the file's version, each in one transaction; BEGIN
    IMMEDIATE takes the write lock first, so two workers starting together apply each once."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at REAL NOT NULL)"
    )
    for migration in migrations("sqlite"):
        async with _immediate(db):
            if migration.version > await _version(db):
                for statement in migration.statements:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (migration.version, migration.name, time.time())
                )
