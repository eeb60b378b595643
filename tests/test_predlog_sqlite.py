"""predlog/sqlite.py and the SQL of predlog/store.py on a real SQLite file. The scenarios take any
Store: tests/test_predlog_postgresql.py runs them on a real PostgreSQL server."""

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from predlog.entry import LoggedRow, split
from predlog.sqlite import SQLiteStore
from predlog.store import DATABASE_ERRORS, Query, Store, migrations

Opener = Callable[[], Store]  # a fresh Store object on the same database each call


def row(ts: float, family: str = "mechanical", key: str = "k1", warnings: tuple[str, ...] = (), tag: str = "m:a"):
    text = "[" + ",".join(f'"{w}"' for w in warnings) + "]"
    return LoggedRow(ts, family, "single", key, '{"m": 1}', tag, "{}", text, len(warnings), False, 1.5, "abc", "r")


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
    bad = LoggedRow(3.0, None, "single", "k", "{}", "t", "{}", "[]", 0, False, None, None, None)  # type: ignore[arg-type]
    with pytest.raises(DATABASE_ERRORS):
        await store.write(*split([row(1.0), row(2.0), bad]))
    await store.write(*split([row(4.0)]))
    found = await store.select(Query())
    await store.close()
    return [r[1] for r in found]


async def filters_and_cursor(store: Store) -> dict[str, list[float]]:
    await store.open()
    warned = row(20.0, "ballistic", "k2", ("Tile thickness outside the training range",), "b:b")
    await store.write(*split([row(10.0), warned, row(30.0, key="k3"), row(40.0, key="k3")]))
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
    await store.write(*split([row(5.0, key="old"), row(10.0, key="a"), row(11.0, key="b"), row(12.0, key="b")]))
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
    bad = LoggedRow(0.5, None, "single", "k", "{}", "t", "{}", "[]", 0, False, None, None, None)  # type: ignore[arg-type]
    with pytest.raises(DATABASE_ERRORS):
        await store.write(*split([row(float(i)) for i in range(size - 1)] + [bad]))
    await store.write(*split([row(float(i)) for i in range(size)]))
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


# rows as migration 0002 left them: (id, ts, family, kind, material_key, material, model_tag, outputs, warnings,
# n_warnings, cached, latency_ms, api_key_id, request_id, options); rows 1 and 2 share one answer
OLD_ROWS = [
    (1, 1.0, "mechanical", "single", "k1", '{"m":1}', "t:a", '{"d":[1]}', "[]", 0, 0, 1.5, None, "r1", "{}"),
    (2, 2.0, "mechanical", "single", "k1", '{"m":1}', "t:a", '{"d":[1]}', "[]", 0, 1, 0.1, "abc", "r2", "{}"),
    (3, 3.0, "mechanical", "batch", "k1", '{"m":1}', "t:b", '{"d":[2]}', '["w"]', 1, 0, None, None, None, "{}"),
    (4, 4.0, "ballistic", "single", "k2", '{"m":2}', "t:c", '{"v":[3]}', "[]", 0, 0, 2.0, None, "r4", "{}"),
]


def old_log(path: Path) -> None:
    """A log file at migration 0002, holding ``OLD_ROWS``."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL)")
        for migration in migrations("sqlite")[:2]:
            for statement in migration.statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (migration.version, migration.name))
        db.executemany(f"INSERT INTO predictions VALUES ({', '.join(['?'] * 15)})", OLD_ROWS)


async def migrated(store: Store) -> tuple[list[tuple], int]:
    """The old rows as the readers see them after 0003, and the id of a row written afterwards."""
    await store.open()
    found = await store.select(Query())
    await store.write(*split([row(5.0)]))
    newest = (await store.select(Query(limit=1)))[0][0]
    await store.close()
    return sorted(found), newest


def test_migration_0003_keeps_every_old_row_and_stores_each_answer_once(tmp_path):
    old_log(tmp_path / "log.sqlite3")
    found, newest = asyncio.run(migrated(SQLiteStore(tmp_path / "log.sqlite3")))
    assert found == OLD_ROWS and newest == 5
    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 3 + 1


def test_a_repeated_answer_is_stored_once_and_retention_deletes_it_with_its_last_row(tmp_path):
    async def go() -> list[int]:
        store = SQLiteStore(tmp_path / "log.sqlite3")
        await store.open()
        await store.write(*split([row(1.0, key="a"), row(2.0, key="a"), row(3.0, key="b")]))
        rows, answers = split([row(4.0, key="a")])
        await store.write(rows, answers)  # an answer already stored is left as it is
        counts = [await answer_count(tmp_path)]
        await store.delete_before(3.5)  # "b" loses its only row; "a" keeps the one at 4.0
        counts.append(await answer_count(tmp_path))
        left = await store.select(Query())
        await store.close()
        return [*counts, len(left)]

    assert asyncio.run(go()) == [2, 1, 1]


async def answer_count(path: Path) -> int:
    with sqlite3.connect(path / "log.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
