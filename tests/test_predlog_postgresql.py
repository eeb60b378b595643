"""predlog/postgresql.py on a real PostgreSQL server the tests start (Debian's `postgresql`;
skipped outside CI when it is absent, failed in CI): the same scenarios as SQLite, the pool, and
a server killed under the writer (rows dropped and counted, writing resumed once it is back)."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile

import asyncpg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from monitoring.metrics import Metrics
from predlog.entry import Entry
from predlog.postgresql import PostgreSQLStore
from predlog.store import Query, migrations
from predlog.writer import PredictionLog
from settings import PredictionLogSettings
from tests.support import PostgresServer, require_postgres_bin_dir
from tests.test_predlog_sqlite import (
    FILTERED,
    OLD_ROWS,
    TOP_INPUTS_RETENTION,
    filters_and_cursor,
    migrated,
    schema_once,
    top_inputs_retention,
    whole_batches,
)

_NAMES = itertools.count()


@pytest.fixture(scope="module")
def server():
    root = tempfile.mkdtemp(prefix="armor-pg-")  # under /tmp: the postgres user must reach it
    running = PostgresServer(require_postgres_bin_dir(), root)
    running.start()
    yield running
    running.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def database(server) -> str:
    """The URL of a fresh, empty database on the server."""
    name = f"log_{next(_NAMES)}"

    async def create() -> None:
        conn = await asyncpg.connect(server.url)
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()

    asyncio.run(create())
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def test_the_schema_is_created_once_under_concurrent_starts(database):
    assert asyncio.run(schema_once(lambda: PostgreSQLStore(database, 2))) == max(
        m.version for m in migrations("postgresql")
    )


def test_a_batch_with_a_bad_row_writes_nothing(database):
    assert asyncio.run(whole_batches(PostgreSQLStore(database, 2))) == [4.0]


def test_filters_and_the_cursor_page_newest_first(database):
    assert asyncio.run(filters_and_cursor(PostgreSQLStore(database, 2))) == FILTERED


def test_top_materials_inputs_and_retention(database):
    assert asyncio.run(top_inputs_retention(PostgreSQLStore(database, 2))) == TOP_INPUTS_RETENTION


async def old_log(url: str) -> None:
    """A database at migration 0002, holding ``OLD_ROWS`` (ids from its sequence, as written)."""
    conn = await asyncpg.connect(url)
    await conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION)"
    )
    for migration in migrations("postgresql")[:2]:
        for statement in migration.statements:
            await conn.execute(statement)
        await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, 0)", migration.version, migration.name)
    marks = ", ".join(f"${i}" for i in range(1, 15))
    columns = "ts, family, kind, material_key, material, model_tag, outputs, warnings, n_warnings, cached, "
    columns += "latency_ms, api_key_id, request_id, options"
    rows = [(*r[1:10], bool(r[10]), *r[11:]) for r in OLD_ROWS]
    await conn.executemany(f"INSERT INTO predictions ({columns}) VALUES ({marks})", rows)
    await conn.close()


def test_migration_0003_keeps_every_old_row(database):
    asyncio.run(old_log(database))
    found, newest = asyncio.run(migrated(PostgreSQLStore(database, 2)))
    assert [(*r[:10], int(r[10]), *r[11:]) for r in found] == OLD_ROWS and newest == 5


BODY = b'{"predictions": {"density": {"value": 3.2, "confidence_interval": [3.1, 3.3]}}, "warnings": []}'


def test_a_killed_server_drops_counted_rows_and_writing_resumes_when_it_is_back(server, database):
    metrics = Metrics()
    settings = PredictionLogSettings(enabled=True, flush_s=0.02, retention_days=0)
    store = PostgreSQLStore(database, 2)

    def entry(i: int) -> Entry:
        return Entry(float(i), "mechanical", "single", {"i": i}, "m:a", BODY, False, 1.0)

    def dropped() -> float:
        return metrics.log_dropped.labels("database")._value.get()

    async def go() -> list[float]:
        log = PredictionLog(settings, metrics, store)
        log.start()
        log.offer(entry(1))
        while metrics.log_written._value.get() < 1:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.kill)
        log.offer(entry(2))
        while dropped() < 1:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.start)
        log.offer(entry(3))
        while metrics.log_written._value.get() < 2:
            if dropped() and not log.queued:  # a write that failed while the server came up: offer again
                log.offer(entry(3))
            await asyncio.sleep(0.05)
        found = await store.select(Query())
        await log.close()
        return sorted(r[1] for r in found)

    found = asyncio.run(asyncio.wait_for(go(), 120))
    assert found[0] == 1.0 and found[-1] == 3.0 and 2.0 not in found
    assert dropped() >= 1


def test_the_service_logs_to_postgresql(make_core, database):
    core = make_core(prediction_log=True, database_url=database, database_pool_size=2)
    with TestClient(create_app(lambda: core, 65536)) as http:
        http.post("/api/v1/predict/hardness", json={"formula": "SiC"})
        rows = http.get("/api/v1/predictions").json()["predictions"]
        backend = http.get("/api/v1/performance").json()["prediction_log"]["backend"]
        http.portal.call(core.prediction_log.close)  # the pool belongs to the app's event loop
    assert [r["family"] for r in rows] == ["hardness"] and backend == "postgresql"
