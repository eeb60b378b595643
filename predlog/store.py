"""One interface over the log's databases, and the SQL both share.

The schema is created and migrated from versioned SQL files, ``migrations/<dialect>/NNNN_name.sql``,
applied in order, each in one transaction with its number recorded in ``schema_migrations``. Why
not a migration tool (Alembic): the log is two tables and a view whose SQL differs by a few types
between the databases; Alembic would bring SQLAlchemy into the service for it. Plain numbered files keep the
schema readable where it is applied, and a new version is one new file per dialect.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import asyncpg

from predlog.entry import ANSWER_COLUMNS, COLUMNS, LOGGED_COLUMNS, Answer, Row

# What a database that is down, full, read-only or unreachable raises, through either driver.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# what a query returns, in order (JSON columns as stored text), from the ``prediction_log`` view
SELECTED = ("id", *LOGGED_COLUMNS)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations(dialect: str) -> list[Migration]:
    """The dialect's migrations in version order (statements split at ``;``: the files hold no
    string literal with one)."""
    found = []
    for path in sorted((MIGRATIONS / dialect).glob("*.sql")):
        matched = _MIGRATION_NAME.match(path.name)
        if matched is None:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        statements = tuple(s.strip() for s in path.read_text().split(";") if s.strip())
        found.append(Migration(int(matched.group(1)), path.stem, statements))
    return found


@dataclass(frozen=True)
class Query:
    """Filters of GET /api/v1/predictions; ``before_id``: the cursor (rows with a smaller id)."""

    since: float | None = None  # unix time, s (inclusive)
    until: float | None = None  # unix time, s (exclusive)
    family: str | None = None
    model_tag: str | None = None
    material_key: str | None = None
    warning: str | None = None  # a substring of one of the row's warnings, any case
    before_id: int | None = None
    limit: int = 100


@dataclass
class Where:
    """A WHERE clause built with the dialect's placeholders (``?`` or ``$n``)."""

    numbered: bool
    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, template: str, value: Any) -> None:
        """``template`` with ``{}`` where the value goes."""
        self.args.append(value)
        self.clauses.append(template.format(f"${len(self.args)}" if self.numbered else "?"))

    def sql(self) -> str:
        return f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""

    def placeholder(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}" if self.numbered else "?"


def select_sql(query: Query, numbered: bool, contains: str) -> tuple[str, list[Any]]:
    """The page's SELECT, newest first. ``contains``: the dialect's substring test (``{}`` the
    haystack, ``{}`` the needle)."""
    where = Where(numbered)
    for column, value in (("family", query.family), ("model_tag", query.model_tag)):
        if value is not None:
            where.add(f"{column} = {{}}", value)
    if query.material_key is not None:
        where.add("material_key = {}", query.material_key)
    if query.since is not None:
        where.add("ts >= {}", query.since)
    if query.until is not None:
        where.add("ts < {}", query.until)
    if query.before_id is not None:
        where.add("id < {}", query.before_id)
    if query.warning is not None:
        where.add(contains.format("lower(warnings)", "lower({})"), query.warning)
    limit = where.placeholder(query.limit)
    return f"SELECT {', '.join(SELECTED)} FROM prediction_log{where.sql()} ORDER BY id DESC LIMIT {limit}", where.args


def top_sql(numbered: bool) -> str:
    """The most requested materials since a time, with the answer options they were asked with:
    (family, material, options, count). Counted per answer first, then each answer's columns read once."""
    since, limit = ("$1", "$2") if numbered else ("?", "?")
    return (
        "SELECT p.family, MAX(a.material), a.options, SUM(p.n) AS n FROM "
        f"(SELECT family, answer_key, COUNT(*) AS n FROM predictions WHERE ts >= {since} "
        "GROUP BY family, answer_key) p "
        "JOIN answers a ON a.answer_key = p.answer_key "
        f"GROUP BY p.family, a.material_key, a.options ORDER BY n DESC LIMIT {limit}"
    )


def inputs_sql(numbered: bool) -> str:
    """A family's logged materials since a time, newest first: (material, n_warnings)."""
    family, since, limit = ("$1", "$2", "$3") if numbered else ("?", "?", "?")
    return (
        f"SELECT material, n_warnings FROM prediction_log WHERE family = {family} AND ts >= {since} "
        f"ORDER BY id DESC LIMIT {limit}"
    )


@functools.lru_cache(maxsize=64)
def insert_sql(numbered: bool, rows: int = 1) -> str:
    """The INSERT of ``rows`` rows in one statement (``?`` placeholders only: ``$n`` numbers one row)."""
    return _insert("predictions", COLUMNS, numbered, rows, "")


@functools.lru_cache(maxsize=64)
def insert_answers_sql(numbered: bool, rows: int = 1) -> str:
    """The INSERT of ``rows`` answers, each kept once: an answer already there (another writer's,
    or one this writer no longer remembers storing) is left as it is."""
    return _insert("answers", ANSWER_COLUMNS, numbered, rows, " ON CONFLICT (answer_key) DO NOTHING")


def _insert(table: str, columns: tuple[str, ...], numbered: bool, rows: int, tail: str) -> str:
    if numbered:
        marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"
    values = ", ".join([f"({', '.join(['?'] * len(columns))})"] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{tail}"


# Answers no row refers to any more (their rows expired) are deleted after the rows, by each
# dialect's anti-join (``predictions.answer_key`` has no index: a row's only random-keyed index
# write is its answer's key, once per answer). A writer that remembers storing an answer forgets
# it at its own retention round and after a failed write (RowMaker.forget_stored), and wrote a
# row referring to it since: with retention longer than the rounds (an hour), such an answer is
# never without a row.


def retention_cutoff(days: float, now: float | None = None) -> float:
    return (time.time() if now is None else now) - days * 86_400.0


class Store(Protocol):
    """A database of log rows. Every write is one transaction: a batch is written whole or not at all."""

    backend: str  # "sqlite" or "postgresql"

    async def open(self) -> None:
        """Connect and bring the schema to the newest version (safe to call again after a failure)."""
        ...

    async def write(self, rows: Sequence[Row], answers: Sequence[Answer] = ()) -> None:
        """``answers`` (those ``rows`` refer to that the database may not hold) and ``rows``, in
        one transaction."""
        ...

    async def select(self, query: Query) -> list[tuple[Any, ...]]:
        """Rows matching ``query``, newest first, as ``SELECTED``."""
        ...

    async def top_materials(self, since: float, limit: int) -> list[tuple[str, str, str, int]]: ...

    async def inputs(self, family: str, since: float, limit: int) -> list[tuple[str, int]]: ...

    async def delete_before(self, ts: float) -> int:
        """Delete rows older than ``ts``, and the answers no row refers to any more; how many rows went."""
        ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...


Handle = TypeVar("Handle")


class Connected(Generic[Handle]):
    """What both stores share: one handle on the database (SQLite's connection, PostgreSQL's
    pool), made and migrated on the first ``open``, made again by the ``open`` after a failure
    closed it (the writer's retry); a handle that fails its migration is closed, not kept."""

    what = "database"  # in the error of a call before ``open``
    postgres = False  # the SQL dialect of the statements of this module (select_sql, top_sql, inputs_sql)
    contains = ""  # the dialect's "column contains text" expression, with {} for both

    def __init__(self) -> None:
        self._handle: Handle | None = None
        self._opening = asyncio.Lock()  # the writer and the warm-up may open it at once

    async def open(self) -> None:
        async with self._opening:
            if self._handle is None:
                handle = await self._connect()
                try:
                    await self._migrate(handle)
                except BaseException:
                    await self._disconnect(handle)
                    raise
                self._handle = handle

    def _ready(self) -> Handle:
        if self._handle is None:
            raise ConnectionError(f"the prediction log's {self.what} is not open")
        return self._handle

    async def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            await self._disconnect(handle)

    async def select(self, query: Query) -> list[tuple[Any, ...]]:
        sql, args = select_sql(query, self.postgres, self.contains)
        return await self._fetch(sql, args)

    async def top_materials(self, since: float, limit: int) -> list[tuple[str, str, str, int]]:
        return [(f, m, o, int(n)) for f, m, o, n in await self._fetch(top_sql(self.postgres), [since, limit])]

    async def inputs(self, family: str, since: float, limit: int) -> list[tuple[str, int]]:
        return [(m, int(w)) for m, w in await self._fetch(inputs_sql(self.postgres), [family, since, limit])]

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def _connect(self) -> Handle:
        raise NotImplementedError

    async def _migrate(self, handle: Handle) -> None:
        raise NotImplementedError

    async def _disconnect(self, handle: Handle) -> None:
        raise NotImplementedError


def open_store(url: str, pool_size: int) -> Store:
    """The store ``url`` names: ``sqlite:///<path>`` or ``postgresql://...`` (``postgres://`` too)."""
    if url.startswith("sqlite:///"):
        from predlog.sqlite import SQLiteStore

        return SQLiteStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        from predlog.postgresql import PostgreSQLStore

        return PostgreSQLStore(url, pool_size)
    raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")
