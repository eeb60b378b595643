"""The request path's side of the log, the same whether the rows are written in this process
(predlog/writer.py) or handed to the instance's writer process (predlog/handover.py): a bounded
queue that never waits and never fails, and the /batch rows' sampling."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from typing import Protocol

from monitoring.metrics import Metrics
from predlog.entry import Entry
from predlog.store import Store
from settings import PredictionLogSettings


class Log(Protocol):
    """What the service holds of the log, written in its process (predlog/writer.py) or handed to
    the writer process (predlog/handover.py)."""

    store: Store  # what the query routes, the warm-up and the drift report read
    last_error: str | None

    def offer(self, entry: Entry) -> None: ...

    def knows(self, key: str) -> bool: ...

    def sampled(self) -> bool: ...

    @property
    def queued(self) -> int: ...

    def start(self) -> None: ...

    async def flush(self) -> bool:
        """Everything queued so far is written (False: not all of it; dropped rows are counted)."""
        ...

    async def close(self, timeout_s: float = 5.0) -> None: ...


class EntryQueue:
    """The queue, and the background task (``_run``, named ``TASK``) that empties it."""

    TASK = "prediction-log"

    def __init__(self, settings: PredictionLogSettings, metrics: Metrics):
        self.settings, self.metrics = settings, metrics
        self._queue: deque[Entry] = deque()
        self._sampler = random.Random()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.TASK)

    async def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError

    def offer(self, entry: Entry) -> None:
        """Queue ``entry``; a full queue drops it (``queue_full``: the writer fell behind or is away)."""
        if len(self._queue) >= self.settings.queue_rows:
            self.metrics.log_dropped.labels("queue_full").inc()
            return
        self._queue.append(entry)

    def sampled(self) -> bool:
        """Whether to record a /batch row (PREDICTION_LOG_SAMPLE of them)."""
        sample = self.settings.sample
        return sample >= 1.0 or self._sampler.random() < sample

    @property
    def queued(self) -> int:
        return len(self._queue)
