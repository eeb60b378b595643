"""The log's writer: a bounded queue and a background task that writes it in batches. It runs in
the instance's writer process under ``bentoml serve`` (predlog/process.py, fed by the API workers:
predlog/handover.py), and in the API worker's own process outside a serve (tests, the plain
baseline), where the request path appends to it directly.

- ``offer`` never waits and never fails: a full queue drops the entry (``queue_full``).
- Every PREDICTION_LOG_FLUSH_S the task turns queued entries into rows and writes them,
  PREDICTION_LOG_BATCH_ROWS per transaction, with the answers they refer to that it has not
  stored yet (each answer is stored once: predlog/entry.py RowMaker). A failed write (database down, disk full, file
  read-only) drops that batch (``database``; a transaction is written whole or not at all) and
  the task waits, doubling up to ``MAX_BACKOFF_S``, then tries again, reconnecting: writing
  resumes by itself once the database is back. Meanwhile the queue fills and drops what it
  cannot hold, so memory stays bounded.
- Rows older than PREDICTION_LOG_RETENTION_DAYS are deleted every ``RETENTION_EVERY_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from monitoring.metrics import Metrics
from predlog.entry import RowMaker
from predlog.queue import EntryQueue
from predlog.store import Store, open_store, retention_cutoff
from settings import PredictionLogSettings

logger = logging.getLogger("armor.predlog")

MAX_BACKOFF_S = 5.0
RETENTION_EVERY_S = 3600.0


class PredictionLog(EntryQueue):
    TASK = "prediction-log-writer"

    def __init__(
        self,
        settings: PredictionLogSettings,
        metrics: Metrics,
        store: Store | None = None,
        memo_keys: int = RowMaker.MEMO_KEYS,
    ):
        """``memo_keys``: response keys per generation of the RowMaker's memo (the writer process,
        which makes the rows of every API worker, keeps more)."""
        super().__init__(settings, metrics)
        self.store = store or open_store(settings.database_url, settings.pool_size)
        self._rows = RowMaker(memo_keys)
        # entries taken from the queue so far, written or dropped (and counted); the writer process
        # confirms the API workers' messages by it (predlog/process.py), told after every batch
        self.settled = 0
        self.on_settled: Callable[[], None] | None = None
        self._lock = asyncio.Lock()  # one drain at a time (the task's, or a reader's flush)
        self._backoff_s = 0.0
        self._next_retention = 0.0
        self.last_error: str | None = None

    # ---- the request path (offer, sampled: EntryQueue)

    def knows(self, key: str) -> bool:
        """Whether the writer knows the columns of answers under response key ``key`` (the entry
        can then leave its material out)."""
        return self._rows.knows(key)

    # ---- the writer

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop the task, write what is queued (within ``timeout_s``) and disconnect."""
        await self._stop_task()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout_s)
        if self._queue:  # not written in time (or the database is down): dropped, and counted
            self.metrics.log_dropped.labels("database").inc(len(self._queue))
            self._settle(len(self._queue))
            self._queue.clear()
        await self.store.close()

    async def flush(self) -> bool:
        """Write everything queued now; False when a write failed (its rows dropped and counted)."""
        async with self._lock:
            written = True
            while self._queue and written:
                written = await self._write_batch()
            return written

    def _settle(self, entries: int) -> None:
        self.settled += entries
        if self.on_settled is not None:
            self.on_settled()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_s + self._backoff_s)
            written = await self.flush()
            self._backoff_s = 0.0 if written else min(MAX_BACKOFF_S, max(self.settings.flush_s, 2 * self._backoff_s))
            if written and self.settings.retention_days > 0 and time.monotonic() >= self._next_retention:
                await self._expire()

    async def _write_batch(self) -> bool:
        take = min(len(self._queue), self.settings.batch_rows)
        entries = [self._queue.popleft() for _ in range(take)]
        made = self._rows.made(entries)
        if made.forgotten:
            self.metrics.log_dropped.labels("forgotten").inc(made.forgotten)
        try:
            await self.store.open()
            await self.store.write(made.rows, made.answers)
        except Exception as exc:  # whatever the database or driver raised: the rows are dropped, counted
            self.metrics.log_dropped.labels("database").inc(len(entries))
            await self._failed(exc)
            self._settle(len(entries))
            return False
        self._rows.stored(made.answers)
        self.metrics.log_written.inc(len(made.rows))
        self.last_error = None
        self._settle(len(entries))
        return True

    async def _failed(self, exc: Exception) -> None:
        self.last_error = type(exc).__name__
        self._rows.forget_stored()  # the database reopened may be another (a new file) or have lost them
        logger.warning("prediction log write failed (%s); rows dropped, retrying", self.last_error)
        with contextlib.suppress(Exception):  # a broken connection is rebuilt by the next open()
            await self.store.close()

    async def _expire(self) -> None:
        self._next_retention = time.monotonic() + RETENTION_EVERY_S
        async with self._lock:  # no batch made before the answers are forgotten is written after the delete
            try:
                await self.store.open()  # the first round comes before any write or the warm-up opened it
                self._rows.forget_stored()  # this round may delete answers whose rows expired
                await self.store.delete_before(retention_cutoff(self.settings.retention_days))
            except Exception as exc:  # retention is retried at the next round
                logger.warning("prediction log retention failed (%s)", type(exc).__name__)
