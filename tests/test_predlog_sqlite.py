"""predlog/sqlite.py and the SQL of predlog/store.py on a real SQLite file. The scenarios take any
Store: tests/test_predlog_postgresql.py runs them on a real PostgreSQL server."""

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from predlog.entry import Row
from predlog.sqlite import SQLiteStore
from predlog.store import DATABASE_ERRORS, Query, Store, migrations

Opener = Callable[[], Store]  # a fresh Store object on the same database each call


def row(ts: float, family: str = "mechanical", key: str = "k1", warnings: tuple[str, ...] = (), tag: str = "m:a"):
    text = "[" + ",".join(f'"{w}"' for w in warnings) + "]"
    return Row(ts, family, "single", key, '{"m": 1}', tag, "{}", text, len(warnings), False, 1.5, "abc", "r")


async def schema_once(opener: Opener) -> int:
    """Two stores open together (two workers starting), then a third (a restart): each migration
    applied once."""
    first, second = opener(), opener()
    await asyncio.gather(first.open(), second.open())
    third = opener()
    await third.open()
    version = await third.schema_version()
    for store in (first, second, third):
        await store.close()
    return version


async def whole_batches(store: Store) -> list[float]:
    await store.open()
    bad = Row(3.0, None, "single", "k", "{}", "t", "{}", "[]", 0, False, None, None, None)  # type: ignore[arg-type]
    with pytest.raises(DATABASE_ERRORS):
        await store.write([row(1.0), row(2.0), bad])
    await store.write([row(4.0)])
    found = await store.select(Query())
    await store.close()
    return [r[1] for r in found]


async def filters_and_cursor(store: Store) -> dict[str, list[float]]:
    await store.open()
    warned = row(20.0, "ballistic", "k2", ("Tile thickness outside the training range",), "b:b")
    await store.write([row(10.0), warned, row(30.0, key="k3"), row(40.0, key="k3")])
    pages = {
        "all": await store.select(Query()),
        "first two": await store.select(Query(limit=2)),
        "after": await store.select(Query(limit=2, before_id=3)),
        "family": await store.select(Query(family="ballistic")),
        "tag": await store.select(Query(model_tag="b:b")),
        "key": await store.select(Query(material_key="k3")),
        "time": await store.select(Query(since=20.0, until=40.0)),
        "warning": await store.select(Query(warning="TILE THICKNESS")),
    }
    await store.close()
    return {name: [r[1] for r in rows] for name, rows in pages.items()}


FILTERED = {
    "all": [40.0, 30.0, 20.0, 10.0],
    "first two": [40.0, 30.0],
    "after": [20.0, 10.0],
    "family": [20.0],
    "tag": [20.0],
    "key": [40.0, 30.0],
    "time": [30.0, 20.0],
    "warning": [20.0],
}


async def top_inputs_retention(store: Store) -> tuple[list, list, int, int]:
    await store.open()
    await store.write([row(5.0, key="old"), row(10.0, key="a"), row(11.0, key="b"), row(12.0, key="b")])
    top = await store.top_materials(since=10.0, limit=5)
    inputs = await store.inputs("mechanical", since=11.0, limit=10)
    deleted = await store.delete_before(10.0)
    left = len(await store.select(Query()))
    await store.close()
    return top, inputs, deleted, left


TOP_INPUTS_RETENTION = (
    [("mechanical", '{"m": 1}', "{}", 2), ("mechanical", '{"m": 1}', "{}", 1)],
    [('{"m": 1}', 0), ('{"m": 1}', 0)],
    1,
    3,
)


def test_the_schema_is_created_once_and_its_version_recorded(tmp_path):
    version = asyncio.run(schema_once(lambda: SQLiteStore(tmp_path / "log.sqlite3")))
    assert version == max(m.version for m in migrations("sqlite"))
    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(migrations("sqlite"))


def test_a_batch_with_a_bad_row_writes_nothing(tmp_path):
    assert asyncio.run(whole_batches(SQLiteStore(tmp_path / "log.sqlite3"))) == [4.0]


def test_filters_and_the_cursor_page_newest_first(tmp_path):
    assert asyncio.run(filters_and_cursor(SQLiteStore(tmp_path / "log.sqlite3"))) == FILTERED


def test_top_materials_inputs_and_retention(tmp_path):
    assert asyncio.run(top_inputs_retention(SQLiteStore(tmp_path / "log.sqlite3"))) == TOP_INPUTS_RETENTION


async def chunked_batches(store: SQLiteStore) -> tuple[int, list[float]]:
    """A batch of more rows than one INSERT holds is written whole (in order), and a bad row in its
    last chunk leaves nothing of the earlier chunks."""
    from predlog.sqlite import INSERT_CHUNK_ROWS

    await store.open()
    size = 2 * INSERT_CHUNK_ROWS + 7
    bad = Row(0.5, None, "single", "k", "{}", "t", "{}", "[]", 0, False, None, None, None)  # type: ignore[arg-type]
    with pytest.raises(DATABASE_ERRORS):
        await store.write([row(float(i)) for i in range(size - 1)] + [bad])
    await store.write([row(float(i)) for i in range(size)])
    found = await store.select(Query(limit=1000))
    await store.close()
    return size, [r[1] for r in found]


def test_a_batch_larger_than_one_insert_is_one_transaction(tmp_path):
    size, found = asyncio.run(chunked_batches(SQLiteStore(tmp_path / "log.sqlite3")))
    assert found == [float(i) for i in reversed(range(size))]


async def open_together(path: Path, stores: int) -> None:
    opened = [SQLiteStore(path) for _ in range(stores)]
    try:
        await asyncio.gather(*(store.open() for store in opened))
    finally:
        for store in opened:
            await store.close()


def test_three_connections_opening_a_new_file_together_all_open(tmp_path):
    """As the writer process and two API workers starting on a new file: switching it to WAL
    answered "database is locked" to 41-43 of 300 such starts before the retry (predlog/sqlite.py)."""
    for attempt in range(60):
        asyncio.run(open_together(tmp_path / f"log-{attempt}.sqlite3", 3))
