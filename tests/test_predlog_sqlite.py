"""predlog/sqlite.py and the SQL of predlog/store.py on a real SQLite file."""

import asyncio
import sqlite3

import pytest

from predlog.entry import Row
from predlog.sqlite import SQLiteStore
from predlog.store import Query, migrations


def row(ts: float, family: str = "mechanical", key: str = "k1", warnings: str = "[]", tag: str = "armor_mechanical:a"):
    n = len(eval(warnings))  # noqa: S307 - a literal list of the test's own
    return Row(ts, family, "single", key, '{"m": 1}', tag, "{}", warnings, n, False, 1.5, "abc", "r")


def run(coro):
    return asyncio.run(coro)


def test_the_schema_is_created_once_and_its_version_recorded(tmp_path):
    async def go():
        for _ in range(2):  # a second open (another worker, a restart) applies nothing again
            store = SQLiteStore(tmp_path / "log.sqlite3")
            await store.open()
            version = await store.schema_version()
            await store.close()
        return version

    assert run(go()) == max(m.version for m in migrations("sqlite"))
    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(migrations("sqlite"))


def test_a_batch_with_a_bad_row_writes_nothing(tmp_path):
    async def go():
        store = SQLiteStore(tmp_path / "log.sqlite3")
        await store.open()
        bad = Row(3.0, None, "single", "k", "{}", "t", "{}", "[]", 0, False, None, None, None)  # type: ignore[arg-type]
        with pytest.raises(sqlite3.IntegrityError):
            await store.write([row(1.0), row(2.0), bad])
        await store.write([row(4.0)])
        found = await store.select(Query())
        await store.close()
        return found

    assert [r[1] for r in run(go())] == [4.0]


def test_filters_and_the_cursor_page_newest_first(tmp_path):
    async def go():
        store = SQLiteStore(tmp_path / "log.sqlite3")
        await store.open()
        await store.write(
            [
                row(10.0),
                row(20.0, "ballistic", "k2", '["Tile thickness outside the training range"]', "armor_ballistic:b"),
                row(30.0, key="k3"),
                row(40.0, key="k3"),
            ]
        )
        pages = {
            "all": await store.select(Query()),
            "first two": await store.select(Query(limit=2)),
            "after": await store.select(Query(limit=2, before_id=3)),
            "family": await store.select(Query(family="ballistic")),
            "tag": await store.select(Query(model_tag="armor_ballistic:b")),
            "key": await store.select(Query(material_key="k3")),
            "time": await store.select(Query(since=20.0, until=40.0)),
            "warning": await store.select(Query(warning="TILE THICKNESS")),
        }
        await store.close()
        return {name: [r[1] for r in rows] for name, rows in pages.items()}

    assert run(go()) == {
        "all": [40.0, 30.0, 20.0, 10.0],
        "first two": [40.0, 30.0],
        "after": [20.0, 10.0],
        "family": [20.0],
        "tag": [20.0],
        "key": [40.0, 30.0],
        "time": [30.0, 20.0],
        "warning": [20.0],
    }


def test_top_materials_inputs_and_retention(tmp_path):
    async def go():
        store = SQLiteStore(tmp_path / "log.sqlite3")
        await store.open()
        await store.write([row(5.0, key="old"), row(10.0, key="a"), row(11.0, key="b"), row(12.0, key="b")])
        top = await store.top_materials(since=10.0, limit=5)
        inputs = await store.inputs("mechanical", since=11.0, limit=10)
        deleted = await store.delete_before(10.0)
        left = len(await store.select(Query()))
        await store.close()
        return top, inputs, deleted, left

    top, inputs, deleted, left = run(go())
    assert top == [("mechanical", '{"m": 1}', 2), ("mechanical", '{"m": 1}', 1)]
    assert inputs == [('{"m": 1}', 0), ('{"m": 1}', 0)]
    assert (deleted, left) == (1, 3)
