"""predlog/writer.py: the queue and its background writer, on real SQLite files (no mock database)."""

import asyncio

from monitoring.metrics import Metrics
from predlog.entry import Entry
from predlog.sqlite import SQLiteStore
from predlog.store import Query
from predlog.writer import PredictionLog
from settings import PredictionLogSettings

BODY = b'{"predictions": {"density": {"value": 3.2, "confidence_interval": [3.1, 3.3]}}, "warnings": []}'


def entry(i: int) -> Entry:
    return Entry(float(i), "mechanical", "single", {"i": i}, "armor_mechanical:v1", BODY, False, 1.0)


def dropped(metrics: Metrics, reason: str) -> float:
    return metrics.log_dropped.labels(reason)._value.get()


def test_queued_entries_are_written_in_batches_of_batch_rows(tmp_path):
    metrics = Metrics()
    settings = PredictionLogSettings(enabled=True, batch_rows=3)
    store = SQLiteStore(tmp_path / "log.sqlite3")

    async def go():
        log = PredictionLog(settings, metrics, store)
        for i in range(7):
            log.offer(entry(i))
        assert await log.flush()
        found = await store.select(Query(limit=100))
        await log.close()
        return found

    found = asyncio.run(go())
    assert sorted(r[1] for r in found) == [float(i) for i in range(7)]
    assert metrics.log_written._value.get() == 7


def test_a_full_queue_drops_and_counts_without_raising(tmp_path):
    metrics = Metrics()
    log = PredictionLog(PredictionLogSettings(enabled=True, queue_rows=2), metrics, SQLiteStore(tmp_path / "x.sqlite3"))
    for i in range(5):
        log.offer(entry(i))
    assert (log.queued, dropped(metrics, "queue_full")) == (2, 3)


def test_a_database_that_cannot_be_opened_drops_the_batch_and_writing_resumes_when_it_is_back(tmp_path):
    """The log's directory is a regular file at first (the database cannot be created), then it
    is removed: the background task writes again by itself, nothing is half written."""
    blocker = tmp_path / "db"
    blocker.write_text("not a directory")
    metrics = Metrics()
    store = SQLiteStore(blocker / "log.sqlite3")
    settings = PredictionLogSettings(enabled=True, flush_s=0.01, retention_days=0)  # the entries date from 1970

    async def go():
        log = PredictionLog(settings, metrics, store)
        log.start()
        for i in range(4):
            log.offer(entry(i))
        while dropped(metrics, "database") < 4:
            await asyncio.sleep(0.01)
        failed_with = log.last_error
        blocker.unlink()
        for i in range(4, 6):
            log.offer(entry(i))
        while metrics.log_written._value.get() < 2:
            await asyncio.sleep(0.01)
        found = await store.select(Query())
        await log.close()
        return failed_with, found, log.last_error

    failed_with, found, error_after = asyncio.run(asyncio.wait_for(go(), 60))
    assert failed_with is not None and error_after is None
    assert sorted(r[1] for r in found) == [4.0, 5.0]
    assert dropped(metrics, "database") == 4


def test_batch_rows_are_sampled():
    log = PredictionLog(PredictionLogSettings(enabled=True, sample=0.0), Metrics(), SQLiteStore(None))  # type: ignore[arg-type]
    assert not any(log.sampled() for _ in range(100))
    log.settings = PredictionLogSettings(enabled=True, sample=0.5)
    picked = sum(log.sampled() for _ in range(2000))
    assert 800 < picked < 1200


def test_retention_deletes_rows_older_than_the_setting(tmp_path):
    import time

    store = SQLiteStore(tmp_path / "log.sqlite3")

    async def go():
        log = PredictionLog(PredictionLogSettings(enabled=True, retention_days=1.0), Metrics(), store)
        log.offer(Entry(time.time() - 2 * 86_400, "mechanical", "single", {"old": 1}, "t", BODY, False, 1.0))
        log.offer(Entry(time.time(), "mechanical", "single", {"new": 1}, "t", BODY, False, 1.0))
        await log.flush()
        await log._expire()
        found = await store.select(Query())
        await log.close()
        return found

    assert [r[5] for r in asyncio.run(go())] == ['{"new":1}']


def test_retention_opens_the_database_when_nothing_has_opened_it_yet(tmp_path):
    """A service's writer runs its first retention round on an empty queue, before the warm-up or
    a write has opened the store: it opens it (it raised ConnectionError, and the next try was an
    hour later)."""
    import time

    path = tmp_path / "log.sqlite3"

    async def go():
        earlier = PredictionLog(PredictionLogSettings(enabled=True), Metrics(), SQLiteStore(path))
        earlier.offer(Entry(time.time() - 2 * 86_400, "mechanical", "single", {"old": 1}, "t", BODY, False, 1.0))
        await earlier.flush()
        await earlier.close()
        store = SQLiteStore(path)
        log = PredictionLog(PredictionLogSettings(enabled=True, retention_days=1.0), Metrics(), store)
        await log._expire()
        found = await store.select(Query())
        await log.close()
        return found

    assert asyncio.run(go()) == []


def keyed(ts: float, first: bool) -> Entry:
    """An answer under response key "k": the first carries its material, a repeat only the key."""
    material, body = ({"k": 1}, BODY) if first else (None, b"")
    return Entry(ts, "mechanical", "single", material, "t", body, not first, 1.0, key="k")


def test_a_repeat_after_a_failed_write_stores_its_answer_again_in_the_new_file(tmp_path):
    """The file is removed and its directory blocked (the write fails), then a new file is made:
    the writer no longer counts the answer as stored, so a repeat's row still has its columns."""
    import shutil

    folder = tmp_path / "db"
    store = SQLiteStore(folder / "log.sqlite3")
    metrics = Metrics()

    async def go():
        log = PredictionLog(PredictionLogSettings(enabled=True, retention_days=0), metrics, store)
        log.offer(keyed(1.0, True))
        assert await log.flush()
        await store.close()
        shutil.rmtree(folder)
        folder.write_text("not a directory")
        log.offer(keyed(2.0, False))
        assert not await log.flush()
        folder.unlink()
        log.offer(keyed(3.0, False))
        assert await log.flush()
        found = await store.select(Query())
        await log.close()
        return found

    assert [(r[1], r[5]) for r in asyncio.run(go())] == [(3.0, '{"k":1}')]
    assert dropped(metrics, "database") == 1


def test_a_repeat_after_retention_deleted_its_answer_stores_it_again(tmp_path):
    import time

    store = SQLiteStore(tmp_path / "log.sqlite3")

    async def go():
        log = PredictionLog(PredictionLogSettings(enabled=True, retention_days=1.0), Metrics(), store)
        log.offer(keyed(time.time() - 2 * 86_400, True))
        await log.flush()
        await log._expire()  # the row expires, and its answer with it
        log.offer(keyed(time.time(), False))
        await log.flush()
        found = await store.select(Query())
        await log.close()
        return found

    assert [r[5] for r in asyncio.run(go())] == ['{"k":1}']
