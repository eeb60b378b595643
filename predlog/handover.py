"""An API worker's side of the log under ``bentoml serve``: it queues entries and hands them to the
instance's writer process (predlog/process.py), which makes the rows and writes them.

Why a process of its own: written in the API worker (its event loop making the rows, the driver's
thread holding the GIL), the log cost 11-36 % of the service's throughput; here an API worker's
share is one append per answer (with, for an answer computed for the request, its logged columns:
predlog/entry.py ``columns``) and, every PREDICTION_LOG_FLUSH_S, one pickled message of its queue
over a Unix socket (predlog/wire.py): 2-3 % of an API worker's samples under py-spy
(docs/prediction-log.md, "Cost").

- ``offer`` never waits and never fails: a full queue drops the entry (``queue_full``). While the
  writer is away (starting, restarted by the process manager) entries stay queued up to
  PREDICTION_LOG_QUEUE and are handed over once it is back; the same when the writer does not read
  (more than ``BACKLOG_BYTES`` waiting in the socket).
- The writer confirms each message once its entries are written, or dropped and counted there
  (``wire.Settled``), and after each batch that cut through a message, how many of its entries are
  not yet. Entries not confirmed when the connection breaks (the writer was killed) are counted
  here as dropped (``writer``): rows are never lost without a count. A writer killed between a
  transaction's commit and the confirmation it sends right after counts that transaction's rows
  twice (written there, dropped here): at most ``PREDICTION_LOG_BATCH_ROWS`` rows, in a window of
  microseconds (longer only while this worker does not read the socket).
- ``flush`` (the query routes) hands the queue over and waits for the writer to write it.
- ``knows``: the response keys whose material this worker has handed over, so a repeat is a
  reference, its material and body left out (the writer remembers its answer: predlog/entry.py
  RowMaker); forgotten when the connection breaks, as a new writer process remembers nothing
  (entries queued without their material before that are dropped there as ``forgotten``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from monitoring.metrics import Metrics
from predlog import wire
from predlog.entry import Generations, RowMaker
from predlog.queue import EntryQueue
from predlog.store import Store, open_store
from settings import PredictionLogSettings

logger = logging.getLogger("armor.predlog")

BACKLOG_BYTES = 32 << 20  # written to the socket and not read by the writer yet: hand nothing more over
FLUSH_WAIT_S = 5.0  # a reader waits at most this long for the writer to write the queue


class HandOver(EntryQueue):
    TASK = "prediction-log-handover"

    def __init__(self, settings: PredictionLogSettings, metrics: Metrics, socket: str, store: Store | None = None):
        """``socket``: the writer process's Unix socket; ``store``: the database, for the reads only
        (the query routes, the warm-up, the drift report)."""
        super().__init__(settings, metrics)
        self.socket = socket
        self.store = store or open_store(settings.database_url, settings.pool_size)
        self._known: Generations[None] = Generations(RowMaker.MEMO_KEYS)
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()
        self._seq = 0
        self.flush_wait_s = FLUSH_WAIT_S
        self.last_error: str | None = None

    def knows(self, key: str) -> bool:
        return key in self._known

    async def flush(self) -> bool:
        """Hand the queue over and wait (at most ``flush_wait_s``) until the writer wrote it."""
        seq = await self._hand_over(sync=True)
        return seq is not None and self._link is not None and await self._link.settled(seq, self.flush_wait_s)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop the task, hand the queue over and wait (within ``timeout_s``) for the writer to
        take care of it; what could not be handed over is dropped and counted."""
        await self._stop_task()
        seq = await self._hand_over(sync=True)
        if seq is not None and self._link is not None:
            await self._link.settled(seq, timeout_s)
        if self._queue:
            self.metrics.log_dropped.labels("writer").inc(len(self._queue))
            self._queue.clear()
        if self._link is not None:
            self._link.close()  # what it has not confirmed yet is the writer's to write and count
            self._link = None
        await self.store.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_s)
            if self._queue:
                await self._hand_over(sync=False)

    async def _hand_over(self, sync: bool) -> int | None:
        """Send the queue as one message; its number, or None when the writer cannot take it now."""
        link = await self._connected()
        if link is None or link.backed_up():
            return None
        entries = list(self._queue)
        self._queue.clear()
        for entry in entries:
            if entry.key is not None and entry.material is not None:
                self._known.put(entry.key, None)
        self._seq += 1
        link.send(wire.handed(entries, self._seq, sync), self._seq, len(entries))
        return self._seq

    async def _connected(self) -> _Link | None:
        async with self._connecting:
            if self._link is None:
                self._link = await self._connect()
            return self._link

    async def _connect(self) -> _Link | None:
        loop = asyncio.get_running_loop()
        try:
            _, link = await loop.create_unix_connection(lambda: _Link(self), self.socket)
        except OSError as exc:
            if self.last_error is None or not self.last_error.startswith("writer"):
                logger.warning("prediction log writer unreachable (%s); entries stay queued", type(exc).__name__)
            self.last_error = f"writer unreachable ({type(exc).__name__})"
            return None
        self._known.clear()  # a new writer process remembers no material
        return link

    def lost(self, link: _Link, unconfirmed: int) -> None:
        """``link`` broke with ``unconfirmed`` entries the writer had not confirmed: dropped, counted."""
        if unconfirmed:
            self.metrics.log_dropped.labels("writer").inc(unconfirmed)
        if self._link is link:
            self._link = None
            self._known.clear()  # the next writer process remembers no material: entries carry it again
            self.last_error = "writer connection lost"
            logger.warning("the prediction log's writer went away; %d entries not confirmed, counted", unconfirmed)

    def told(self, settled: wire.Settled) -> None:
        self.last_error = settled.last_error


class _Link(asyncio.Protocol):
    """One connection to the writer: the messages it has not confirmed, and who waits for which."""

    def __init__(self, owner: HandOver):
        self.owner = owner
        self.transport: asyncio.WriteTransport | None = None
        self.frames = wire.Frames()
        self.unconfirmed: dict[int, int] = {}  # message -> its entries not confirmed yet, in order
        self.confirmed = 0
        self.changed = asyncio.Event()
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a Unix socket's is a WriteTransport

    def send(self, data: bytes, seq: int, entries: int) -> None:
        if self.transport is not None:
            self.unconfirmed[seq] = entries
            self.transport.write(data)

    def backed_up(self) -> bool:
        return self.transport is None or self.transport.get_write_buffer_size() > BACKLOG_BYTES

    def data_received(self, data: bytes) -> None:
        try:
            settled = [wire.Settled._make(message) for message in self.frames.feed(data)]
        except (wire.FrameError, TypeError):  # not our writer, or out of step: a broken link
            if self.transport is not None:
                self.transport.close()
            return
        for told in settled:
            self.confirm(told)
            self.owner.told(told)
        self.changed.set()

    def confirm(self, told: wire.Settled) -> None:
        for seq in [s for s in self.unconfirmed if s <= told.seq]:
            del self.unconfirmed[seq]
        self.confirmed = max(self.confirmed, told.seq)
        if told.partial_seq in self.unconfirmed:
            self.unconfirmed[told.partial_seq] = told.partial_left

    async def settled(self, seq: int, timeout_s: float) -> bool:
        """Wait until the writer confirmed message ``seq``; False after ``timeout_s`` or a broken link."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.confirmed < seq and self.transport is not None and not self.closing:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), deadline - loop.time())
            if loop.time() >= deadline:
                break
        return self.confirmed >= seq

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.changed.set()
        self.owner.lost(self, 0 if self.closing else sum(self.unconfirmed.values()))
        self.unconfirmed.clear()
