"""The instance's prediction-log writer: one process beside the API workers of a ``bentoml serve``,
started, restarted and stopped by its process manager (serving/log_writer.py).

It listens on a Unix socket for the API workers' messages (predlog/wire.py, predlog/handover.py),
queues their entries in a ``PredictionLog`` (predlog/writer.py: rows made, written in batches of
one transaction, a failing database dropping and counting rows and retried with back-off,
retention), and after every write attempt tells each worker up to which message its entries are
settled and, of the message a batch cut through, how many are not yet: a message of many batches
is confirmed batch by batch, so a writer killed counts twice (written here, dropped by the worker)
only the rows of a transaction it committed and had not confirmed yet (the frame goes out right
after the commit). Its counters (written, dropped) go to the serve's Prometheus directory, which
/api/v1/performance and /metrics sum over every process.

On SIGTERM it stops listening, waits (at most SHUTDOWN_TIMEOUT_S) until the API workers have
handed over their last entries and gone (on a drain they are gone already: serving/drain.py stops
them first), writes what it holds and exits.

    python -m predlog.process    (with ARMOR_PREDICTION_LOG_SOCKET naming the socket)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from monitoring.logs import configure as configure_logging
from monitoring.metrics import Metrics
from predlog import wire
from predlog.entry import RowMaker
from predlog.writer import PredictionLog
from serving.drain import die_with_parent
from settings import Settings, worker_settings

logger = logging.getLogger("armor.predlog")


class _Pending(NamedTuple):
    """A message not wholly settled: its queued entries are the log's ``start``-th to ``end``-th
    (counted as ``PredictionLog.settled`` counts them; the queue is FIFO, so they follow each other)."""

    peer: _Peer
    seq: int
    start: int
    end: int


class WriterServer:
    """The socket's side of a ``PredictionLog``: entries in, confirmations out."""

    def __init__(self, log: PredictionLog, path: Path):
        self.log, self.path = log, path
        self.peers: set[_Peer] = set()
        self.left = asyncio.Event()  # set whenever a peer goes
        self._server: asyncio.AbstractServer | None = None
        self._flushes: set[asyncio.Task[bool]] = set()
        self._pending: deque[_Pending] = deque()  # in the order of their entries in the log's queue
        log.on_settled = self._settled

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a killed writer's socket
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _Peer(self), str(self.path))
        os.chmod(self.path, 0o600)
        self.log.start()

    def received(self, peer: _Peer, message: wire.Handed) -> None:
        start = self.log.settled + self.log.queued
        for entry in wire.entries_of(message):
            self.log.offer(entry)  # a full queue drops (and counts) at once
        self._pending.append(_Pending(peer, message.seq, start, self.log.settled + self.log.queued))
        if not self.log.queued:
            self._settled()
        if message.sync:  # a reader waits for it
            task = asyncio.get_running_loop().create_task(self.log.flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    def _settled(self) -> None:
        """Tell each API worker up to which of its messages every entry is written, or dropped and
        counted here; and the one whose message the last batch cut through, how many of that
        message's entries are not (its entries follow each other: only one message is cut)."""
        told: dict[_Peer, tuple[int, int]] = {}
        while self._pending and self._pending[0].end <= self.log.settled:
            settled = self._pending.popleft()
            settled.peer.settled = settled.seq
            told[settled.peer] = (0, 0)
        if self._pending and self._pending[0].start < self.log.settled:
            cut = self._pending[0]
            told[cut.peer] = (cut.seq, cut.end - self.log.settled)
        for peer, (partial_seq, partial_left) in told.items():
            peer.tell(self.log.last_error, partial_seq, partial_left)

    async def stop(self, linger_s: float) -> None:
        """Stop listening, wait at most ``linger_s`` for the connected API workers to go, write
        what is queued (what cannot be written is counted; those still connected are told)."""
        if self._server is not None:
            self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + linger_s
        while self.peers and loop.time() < deadline:
            self.left.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.left.wait(), deadline - loop.time())
        await self.log.close()  # writes or counts everything: every message is settled
        for peer in list(self.peers):
            peer.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class _Peer(asyncio.Protocol):
    """One API worker's connection."""

    def __init__(self, server: WriterServer):
        self.server = server
        self.frames = wire.Frames()
        self.transport: asyncio.WriteTransport | None = None
        self.settled = 0  # the last message whose entries are all written or counted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a Unix socket's is a WriteTransport
        self.server.peers.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            for message in self.frames.feed(data):
                self.server.received(self, wire.Handed._make(message))
        except (wire.FrameError, TypeError) as exc:  # TypeError: not a Handed's shape
            logger.error("a prediction log message could not be read (%s); connection closed", type(exc).__name__)
            self.close()

    def tell(self, last_error: str | None, partial_seq: int = 0, partial_left: int = 0) -> None:
        """Confirm up to ``self.settled``; of message ``partial_seq`` (0: none), ``partial_left``
        entries are not settled yet."""
        if self.transport is not None:
            self.transport.write(wire.frame(wire.Settled(self.settled, last_error, partial_seq, partial_left)))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.peers.discard(self)
        self.server.left.set()


def writer_log(settings: Settings) -> PredictionLog:
    """The instance's log: it holds and remembers for every API worker."""
    workers = max(1, settings.serving.api_workers)
    log_settings = settings.prediction_log
    return PredictionLog(
        replace(log_settings, queue_rows=log_settings.queue_rows * workers),
        Metrics(),
        memo_keys=RowMaker.MEMO_KEYS * workers,
    )


async def serve(settings: Settings, socket: Path) -> None:
    server = WriterServer(writer_log(settings), socket)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    logger.info("prediction log writer listening", extra={"event": "predlog_writer", "socket": str(socket)})
    await stopping.wait()
    await server.stop(settings.shutdown.timeout_s)
    logger.info("prediction log writer stopped", extra={"event": "predlog_writer"})


def main() -> None:
    settings = worker_settings()
    configure_logging()
    die_with_parent()
    socket = settings.prediction_log.writer_socket
    if socket is None:
        raise SystemExit("ARMOR_PREDICTION_LOG_SOCKET is not set: the writer runs under bentoml serve")
    asyncio.run(serve(settings, Path(socket)))


if __name__ == "__main__":
    main()
