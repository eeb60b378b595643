"""predlog/handover.py: an API worker's queue handed to the log's writer process, here a real
WriterServer (predlog/process.py) on a Unix socket writing a real SQLite file."""

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

from monitoring.metrics import Metrics
from predlog import wire
from predlog.entry import Entry
from predlog.handover import HandOver
from predlog.process import WriterServer
from predlog.sqlite import SQLiteStore
from predlog.store import Query
from predlog.writer import PredictionLog
from settings import PredictionLogSettings

BODY = b'{"predictions": {"density": {"value": 3.2, "confidence_interval": [3.1, 3.3]}}, "warnings": []}'
SETTINGS = PredictionLogSettings(enabled=True, flush_s=3600, retention_days=0)  # the tests hand over themselves


def entry(i: int, key: str | None = None, material: bytes | None = b'{"i":0}') -> Entry:
    return Entry(float(i), "mechanical", "single", material, "armor_mechanical:v1", BODY, False, 1.0, key=key)


def dropped(metrics: Metrics, reason: str) -> float:
    return metrics.log_dropped.labels(reason)._value.get()


@pytest.fixture
def socket_path():
    directory = tempfile.mkdtemp(prefix="pl-")  # short: a Unix socket's path has at most 107 bytes
    yield Path(directory) / "writer.sock"
    shutil.rmtree(directory, ignore_errors=True)


def writer(
    tmp_path: Path, socket_path: Path, metrics: Metrics | None = None, settings: PredictionLogSettings = SETTINGS
) -> WriterServer:
    log = PredictionLog(settings, metrics or Metrics(), SQLiteStore(tmp_path / "log.sqlite3"))
    return WriterServer(log, socket_path)


def test_a_flush_hands_the_queue_over_and_returns_once_the_writer_wrote_it(tmp_path, socket_path):
    written = Metrics()

    async def go():
        server = writer(tmp_path, socket_path, written)
        await server.start()
        worker = HandOver(SETTINGS, Metrics(), str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        for i in range(5):
            worker.offer(entry(i))
        flushed = await worker.flush()
        found = await server.log.store.select(Query())
        await worker.close()
        await server.stop(linger_s=5)
        return flushed, found, worker.queued

    flushed, found, queued = asyncio.run(asyncio.wait_for(go(), 30))
    assert flushed and sorted(r[1] for r in found) == [0.0, 1.0, 2.0, 3.0, 4.0] and queued == 0
    assert written.log_written._value.get() == 5


def test_a_repeat_leaves_its_material_out_once_handed_over_until_the_writer_goes(tmp_path, socket_path):
    async def go():
        server = writer(tmp_path, socket_path)
        await server.start()
        worker = HandOver(SETTINGS, Metrics(), str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        worker.offer(entry(0, key="k1"))
        before = worker.knows("k1")
        await worker.flush()
        after = worker.knows("k1")
        worker.offer(entry(1, key="k1", material=None))  # a repeat: the writer has its columns
        await worker.flush()
        found = await server.log.store.select(Query())
        await server.stop(linger_s=0)  # the writer goes: a new one would remember nothing
        await asyncio.sleep(0.1)
        gone = worker.knows("k1")
        await worker.close()
        return before, after, gone, found

    before, after, gone, found = asyncio.run(asyncio.wait_for(go(), 30))
    assert (before, after, gone) == (False, True, False)
    assert [r[5] for r in found] == ['{"i":0}', '{"i":0}']


def test_while_the_writer_is_away_entries_stay_queued_up_to_the_limit_and_are_written_when_it_is_back(
    tmp_path, socket_path
):
    metrics = Metrics()
    settings = PredictionLogSettings(enabled=True, flush_s=0.02, queue_rows=5, retention_days=0)

    async def go():
        worker = HandOver(settings, metrics, str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        worker.start()
        for i in range(7):
            worker.offer(entry(i))
        await asyncio.sleep(0.1)
        away = (worker.queued, worker.last_error)
        server = writer(tmp_path, socket_path, settings=settings)
        await server.start()
        while server.log.metrics.log_written._value.get() < 5:
            await asyncio.sleep(0.02)
        await worker.close()
        await server.stop(linger_s=5)
        return away

    (queued, error) = asyncio.run(asyncio.wait_for(go(), 30))
    assert queued == 5 and error.startswith("writer unreachable")
    assert dropped(metrics, "queue_full") == 2


def test_entries_a_writer_never_confirmed_are_counted_when_it_goes(socket_path, tmp_path):
    metrics = Metrics()

    async def go():
        connections: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
            connections.append(stream)  # reads nothing, confirms nothing

        server = await asyncio.start_unix_server(silent, str(socket_path))
        worker = HandOver(SETTINGS, metrics, str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        worker.flush_wait_s = 0.2
        for i in range(4):
            worker.offer(entry(i))
        flushed = await worker.flush()
        connections[0].close()  # the writer is killed
        server.close()
        await asyncio.sleep(0.1)
        await worker.close()
        return flushed

    assert asyncio.run(asyncio.wait_for(go(), 30)) is False
    assert dropped(metrics, "writer") == 4


def test_of_a_message_the_writer_told_partly_settled_only_what_is_left_is_counted_when_it_goes(socket_path, tmp_path):
    """The writer wrote 6 of the 10 entries (a transaction cut through the message) and was killed:
    the worker counts the 4 left, not the 10."""
    metrics = Metrics()

    async def go():
        async def cut(reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
            frames, handed = wire.Frames(), []
            while not handed:
                handed = frames.feed(await reader.read(1 << 16))
            seq = wire.Handed._make(handed[0]).seq
            stream.write(wire.frame(wire.Settled(0, None, seq, 4)))  # 6 of its 10 written, 4 left
            await stream.drain()
            stream.close()  # then the writer is killed

        server = await asyncio.start_unix_server(cut, str(socket_path))
        worker = HandOver(SETTINGS, metrics, str(socket_path), SQLiteStore(tmp_path / "log.sqlite3"))
        for i in range(10):
            worker.offer(entry(i))
        flushed = await worker.flush()
        server.close()
        await worker.close()
        return flushed

    assert asyncio.run(asyncio.wait_for(go(), 30)) is False
    assert dropped(metrics, "writer") == 4
