"""Batching before the hop: concurrent runner calls of one API worker go out as one call.

Every request that misses the caches needs one row from a runner. Sent one by one, each row pays
the whole hop (HTTP round trip, serialisation, the runner's dispatcher) on both sides of it;
that hop, not the model, was the cold path's cost (issue 12). Here rows that wait for the same
(family, model version, explain) are stacked into one call:

- the first row goes out at once (no timer, so a lone request waits for nothing);
- rows that arrive while ``max_in_flight`` calls of their kind are on the wire queue up, and the
  next call takes all of them (at most ``max_rows``); under load the batch grows by itself with
  the concurrency, at low load it is one row.

Each caller gets its own rows of the answer, or the call's exception. A caller that gives up
(cancelled) does not cancel the call the others wait for.

A caller may hand over rows not computed yet (``Deferred``: a single request's materials,
api/feature_extractor.PendingRows): they wait in a lane of their own, and the call they go out in
encodes all of them at once (``materialize``: in the service, as material rows, which the runner
featurises for the rows of every API worker together, runners/core.py) and tells the runner so
(the call's ``RowKind``). A deferred row whose encoding fails fails its own caller only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from runners.contract import RowKind

# family, rows, model version (None: the default model), what the rows are and how to answer them
RunnerCall = Callable[[str, np.ndarray, str | None, RowKind], Awaitable[np.ndarray]]
LaneKey = tuple[str, str | None, bool, bool]  # family, model version, explain, deferred rows


class Deferred(Protocol):
    """Rows computed when their call goes out."""

    @property
    def size(self) -> int: ...  # how many rows


Rows = np.ndarray | Deferred
Materialize = Callable[[str, Sequence[Any]], list[np.ndarray]]  # family, deferred -> the rows sent for them


def _size(rows: Rows) -> int:
    return int(rows.shape[0]) if isinstance(rows, np.ndarray) else rows.size


def no_deferred(family: str, deferred: Sequence[Any]) -> list[np.ndarray]:
    raise TypeError("this coalescer was given deferred rows but no way to compute them")


@dataclass
class _Waiting:
    rows: Rows
    answer: asyncio.Future[np.ndarray]


@dataclass
class _Lane:
    waiting: list[_Waiting] = field(default_factory=list)
    in_flight: int = 0


class Coalescer:
    """Stacks the rows of concurrent calls of one kind into one runner call (see module doc)."""

    def __init__(self, call: RunnerCall, max_rows: int, max_in_flight: int = 1, materialize: Materialize = no_deferred):
        """``materialize``: computes deferred rows (see the module doc)."""
        self._call, self.max_rows, self.max_in_flight = call, max_rows, max_in_flight
        self._materialize = materialize
        self._lanes: dict[LaneKey, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = self.rows = 0

    async def predict(self, family: str, rows: Rows, version: str | None, explain: bool) -> np.ndarray:
        key = (family, version, explain, not isinstance(rows, np.ndarray))  # a tuple: made per request
        lane = self._lanes.setdefault(key, _Lane())
        waiting = _Waiting(rows, asyncio.get_running_loop().create_future())
        lane.waiting.append(waiting)
        if lane.in_flight < self.max_in_flight:
            lane.in_flight += 1
            task = asyncio.create_task(self._drain(key, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(waiting.answer)

    async def direct(self, family: str, rows: np.ndarray, version: str | None, kind: RowKind) -> np.ndarray:
        """One call of its own, beside the lanes: for a caller that is a batch already (a /batch
        route's chunk) and keeps several on the wire, so the runner always has the next one."""
        self.calls, self.rows = self.calls + 1, self.rows + rows.shape[0]
        return await self._call(family, rows, version, kind)

    def _take(self, lane: _Lane) -> list[_Waiting]:
        """The longest run of waiting callers whose rows fit in one call (at least one caller)."""
        taken, total = 0, 0
        for waiting in lane.waiting:
            if taken and total + _size(waiting.rows) > self.max_rows:
                break
            taken, total = taken + 1, total + _size(waiting.rows)
        batch, lane.waiting = lane.waiting[:taken], lane.waiting[taken:]
        return batch

    async def _drain(self, key: LaneKey, lane: _Lane) -> None:
        try:
            while lane.waiting:
                await self._send(key, self._take(lane))
        finally:
            lane.in_flight -= 1

    async def _send(self, key: LaneKey, batch: list[_Waiting]) -> None:
        family, version, explain, deferred = key
        kind = RowKind(explain, materials=deferred)  # deferred rows go out as material rows
        if deferred:
            batch, parts = self._encoded(family, batch)
        else:
            parts = [w.rows for w in batch]  # type: ignore[misc]  # a lane of computed rows
        if not batch:
            return
        rows = parts[0] if len(parts) == 1 else np.vstack(parts)
        self.calls, self.rows = self.calls + 1, self.rows + rows.shape[0]
        try:
            answer = await self._call(family, rows, version, kind)
        except Exception as exc:  # every caller of this call gets the failure, as it would alone
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        start = 0
        for waiting, part in zip(batch, parts, strict=True):
            stop = start + part.shape[0]
            if not waiting.answer.done():
                waiting.answer.set_result(answer[start:stop])
            start = stop

    def _encoded(self, family: str, batch: list[_Waiting]) -> tuple[list[_Waiting], list[np.ndarray]]:
        """The callers of a lane of deferred rows whose rows could be encoded, and those rows
        (encoded together); a caller whose rows cannot be encoded gets the exception (found by
        encoding them alone) and is left out."""
        try:
            return batch, self._materialize(family, [w.rows for w in batch])
        except Exception:
            kept: list[_Waiting] = []
            parts: list[np.ndarray] = []
            for waiting in batch:
                try:
                    parts.append(self._materialize(family, [waiting.rows])[0])
                    kept.append(waiting)
                except Exception as exc:
                    if not waiting.answer.done():
                        waiting.answer.set_exception(exc)
            return kept, parts
