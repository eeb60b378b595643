"""predlog/process.py: the log's writer process's server, on a real Unix socket and SQLite file:
what it confirms (a message of many transactions, transaction by transaction: a killed writer's
rows are counted once), what it tells of a database that is down, and its stop (nothing an API
worker queued is lost on a normal stop, whichever of the two stops first)."""

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from monitoring.metrics import Metrics
from predlog import wire
from predlog.entry import Answer, Entry, Row
from predlog.handover import HandOver
from predlog.process import WriterServer, writer_log
from predlog.sqlite import SQLiteStore
from predlog.store import Query
from predlog.writer import PredictionLog
from settings import PredictionLogSettings, load_settings

BODY = b'{"predictions": {"density": {"value": 3.2, "confidence_interval": [3.1, 3.3]}}, "warnings": []}'
SETTINGS = PredictionLogSettings(enabled=True, flush_s=0.05, retention_days=0)


def entry(i: int) -> Entry:
    return Entry(float(i), "mechanical", "single", b'{"i":0}', "armor_mechanical:v1", BODY, False, 1.0)


class KilledInside(SQLiteStore):
    """Commits ``commits`` transactions; in the next one the writer is killed (``killed`` is set,
    the write never returns)."""

    def __init__(self, path: Path, commits: int):
        super().__init__(path)
        self.commits = commits
        self.killed = asyncio.Event()

    async def write(self, rows: Sequence[Row], answers: Sequence[Answer] = ()) -> None:
        if self.commits == 0:
            self.killed.set()
            await asyncio.get_running_loop().create_future()
        self.commits -= 1
        await super().write(rows, answers)


def kill(server: WriterServer) -> None:
    """What a SIGKILL leaves of the writer: nothing more read, written or confirmed, and its
    connections closed (what it sent before is still read by the API workers)."""
    server._server.close()
    for task in server._flushes:
        task.cancel()
    for peer in list(server.peers):
        peer.close()


async def told_until_closed(reader: asyncio.StreamReader) -> list[wire.Settled]:
    frames, found = wire.Frames(), []
    while data := await reader.read(1 << 16):
        found += [wire.Settled._make(message) for message in frames.feed(data)]
    return found


@pytest.fixture
def socket_path():
    directory = tempfile.mkdtemp(prefix="pl-")  # short: a Unix socket's path has at most 107 bytes
    yield Path(directory) / "writer.sock"
    shutil.rmtree(directory, ignore_errors=True)


def test_a_stop_waits_for_the_connected_workers_last_entries_and_writes_them(tmp_path, socket_path):
    """The order of a stop without the drain (every watcher at once): the writer is told to stop
    first, the API worker hands over its queue on its way out, and the writer writes it."""
    store = SQLiteStore(tmp_path / "log.sqlite3")

    async def go():
        server = WriterServer(PredictionLog(SETTINGS, Metrics(), store), socket_path)
        await server.start()
        worker = HandOver(SETTINGS, Metrics(), str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        worker.start()
        await worker.flush()  # connected
        stopping = asyncio.create_task(server.stop(linger_s=10))
        await asyncio.sleep(0.1)
        for i in range(250):
            worker.offer(entry(i))
        await worker.close()
        await stopping
        await store.open()
        found = await store.select(Query(limit=1000))
        await store.close()
        return found, socket_path.exists()

    found, socket_left = asyncio.run(asyncio.wait_for(go(), 30))
    assert len(found) == 250 and not socket_left


def test_a_database_that_is_down_is_told_to_the_workers_its_rows_counted_and_writing_resumes(tmp_path, socket_path):
    blocker = tmp_path / "db"
    blocker.write_text("not a directory")
    writer_metrics = Metrics()

    async def go():
        log = PredictionLog(SETTINGS, writer_metrics, SQLiteStore(blocker / "log.sqlite3"))
        server = WriterServer(log, socket_path)
        await server.start()
        worker = HandOver(SETTINGS, Metrics(), str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        worker.flush_wait_s = 0.5
        worker.offer(entry(0))
        await worker.flush()  # settled: its row dropped and counted by the writer
        down = worker.last_error
        blocker.unlink()
        worker.offer(entry(1))
        back = (await worker.flush(), worker.last_error)
        await worker.close()
        await server.stop(linger_s=5)
        return down, back

    down, back = asyncio.run(asyncio.wait_for(go(), 30))
    assert down is not None  # the writer's last error, told to the worker (its /api/v1/performance)
    assert back == (True, None)
    assert writer_metrics.log_dropped.labels("database")._value.get() == 1
    assert writer_metrics.log_written._value.get() == 1


def test_a_connection_that_sends_what_is_not_a_message_is_closed_and_others_go_on(tmp_path, socket_path):
    async def go():
        server = WriterServer(PredictionLog(SETTINGS, Metrics(), SQLiteStore(tmp_path / "log.sqlite3")), socket_path)
        await server.start()
        reader, stream = await asyncio.open_unix_connection(str(socket_path))
        stream.write(wire.HEADER.pack(5) + b"12345")
        closed = await reader.read() == b""
        worker = HandOver(SETTINGS, Metrics(), str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        worker.offer(entry(0))
        flushed = await worker.flush()
        await worker.close()
        await server.stop(linger_s=1)
        return closed, flushed

    assert asyncio.run(asyncio.wait_for(go(), 30)) == (True, True)


def test_the_writer_holds_and_remembers_for_every_api_worker():
    log = writer_log(load_settings(api_workers=3, prediction_log_queue=100))
    assert log.settings.queue_rows == 300 and log._rows.memo_keys == 3 * 4096


def test_a_message_is_confirmed_once_its_entries_left_the_writers_queue_so_a_death_counts_each_row_once(
    tmp_path, socket_path
):
    """The database is down: the first batch (message 1) is dropped and counted by the writer and
    confirmed; message 2 is still queued when the writer dies, so the API worker counts it: every
    entry counted once, none twice."""
    blocker = tmp_path / "db"
    blocker.write_text("not a directory")
    writer_metrics, worker_metrics = Metrics(), Metrics()
    settings = PredictionLogSettings(enabled=True, flush_s=3600, batch_rows=2, retention_days=0)

    async def go():
        server = WriterServer(PredictionLog(settings, writer_metrics, SQLiteStore(blocker / "x.sqlite3")), socket_path)
        await server.start()
        worker = HandOver(settings, worker_metrics, str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        for message in range(2):
            worker.offer(entry(2 * message))
            worker.offer(entry(2 * message + 1))
            await worker._hand_over(sync=False)
        while server.log.queued < 4:
            await asyncio.sleep(0.01)
        await server.log.flush()  # the first batch fails: dropped, counted; the rest stays queued
        link = worker._link
        await link.settled(1, 5)
        confirmed = (link.confirmed, dict(link.unconfirmed))
        server._server.close()  # the writer dies with message 2 queued: nothing more is read or written
        for peer in list(server.peers):
            peer.close()
        await asyncio.sleep(0.1)
        await worker.close()
        return confirmed

    confirmed = asyncio.run(asyncio.wait_for(go(), 30))
    assert confirmed == (1, {2: 2})
    assert writer_metrics.log_dropped.labels("database")._value.get() == 2
    assert worker_metrics.log_dropped.labels("writer")._value.get() == 2


def test_after_each_batch_the_worker_whose_message_it_cut_is_told_how_many_of_its_entries_are_left(
    tmp_path, socket_path
):
    """Messages of 3 entries (a worker's 1st) and 4 (another's 5th: a worker's numbers go on across
    connections), written 2 a transaction: each worker is told of its own message after every batch
    that wrote part of it, and confirmed once all of it is written."""
    settings = PredictionLogSettings(enabled=True, flush_s=3600, batch_rows=2, retention_days=0)

    async def go():
        server = WriterServer(PredictionLog(settings, Metrics(), SQLiteStore(tmp_path / "log.sqlite3")), socket_path)
        await server.start()
        workers = [await asyncio.open_unix_connection(str(socket_path)) for _ in range(2)]
        for (_, stream), seq, entries in zip(workers, (1, 5), (3, 4), strict=True):
            queued = server.log.queued + entries
            stream.write(wire.handed([entry(i) for i in range(entries)], seq, False))
            while server.log.queued < queued:
                await asyncio.sleep(0.01)
        await server.log.flush()
        await server.stop(linger_s=0)  # closes the connections: each worker reads all it was told
        told = [await told_until_closed(reader) for reader, _ in workers]
        for _, stream in workers:
            stream.close()
        return told

    first, second = asyncio.run(asyncio.wait_for(go(), 30))
    assert first == [wire.Settled(0, None, 1, 1), wire.Settled(1, None)]
    assert second == [wire.Settled(0, None, 5, 3), wire.Settled(0, None, 5, 1), wire.Settled(5, None)]


def test_a_writer_killed_inside_a_message_of_many_transactions_counts_each_row_once(tmp_path, socket_path):
    """A message of 10 entries, written 2 a transaction; the writer is killed in the 4th, after 3
    committed. Told after each commit how many were left, the API worker counts as dropped only the
    4 rows not written: rows in the file + dropped (``writer``) = 10, none both."""
    worker_metrics = Metrics()
    settings = PredictionLogSettings(enabled=True, flush_s=3600, batch_rows=2, retention_days=0)

    async def go():
        store = KilledInside(tmp_path / "log.sqlite3", commits=3)
        server = WriterServer(PredictionLog(settings, Metrics(), store), socket_path)
        await server.start()
        worker = HandOver(settings, worker_metrics, str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        for i in range(10):
            worker.offer(entry(i))
        flushing = asyncio.create_task(worker.flush())
        await store.killed.wait()
        kill(server)
        flushed = await flushing  # False: the link broke before the message was confirmed
        await worker.close()
        await store.close()
        found = SQLiteStore(tmp_path / "log.sqlite3")
        await found.open()
        rows = await found.select(Query(limit=1000))
        await found.close()
        return flushed, len(rows)

    flushed, rows = asyncio.run(asyncio.wait_for(go(), 30))
    assert flushed is False
    assert (rows, worker_metrics.log_dropped.labels("writer")._value.get()) == (6, 4)
