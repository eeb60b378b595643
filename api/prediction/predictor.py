"""Sends feature rows to the family's side of the runner, through the Coalescer (one runner call
for the rows of all callers of one kind waiting at that moment); ``calls`` counts runner calls."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from api.prediction.coalescer import Coalescer, Materialize, Rows, no_deferred
from runners.contract import RowKind


class RunnerClient(Protocol):
    """One family's side of the runner (runners/services.py ModelRunner, or in-process)."""

    async def predict(self, rows: np.ndarray, version: str | None, kind: RowKind) -> np.ndarray: ...
    async def card(self, version: str | None = None) -> dict[str, Any]: ...


class AsyncPredictor:
    def __init__(
        self,
        runners: dict[str, RunnerClient],
        max_rows: int = 64,
        max_in_flight: int = 1,
        materialize: Materialize = no_deferred,
    ):
        """``max_rows``: most rows per runner call (the runners' MAX_BATCH_SIZE); ``max_in_flight``:
        runner calls of one kind on the wire at once from this worker (COALESCE_IN_FLIGHT);
        ``materialize``: encodes deferred rows when their call goes out (api/prediction/coalescer.py)."""
        self.runners = runners
        self.coalescer = Coalescer(self._call, max_rows, max_in_flight, materialize)

    @property
    def calls(self) -> int:
        return self.coalescer.calls

    async def predict(
        self, family: str, features: Rows, version: str | None, explain: bool, direct: bool = False
    ) -> np.ndarray:
        """``version`` None: the runner's default model; ``direct``: a call of its own, not stacked
        with other callers' rows and past the runner's prediction cache (a batch's chunk, see
        Coalescer.direct: a screen's rows would only evict the interactive traffic's entries);
        ``features`` may be deferred rows (not with ``direct``)."""
        if direct:
            if not isinstance(features, np.ndarray):
                raise TypeError("a direct call needs its rows computed")
            return await self.coalescer.direct(family, features, version, RowKind(explain, cache=False))
        return await self.coalescer.predict(family, features, version, explain)

    async def _call(self, family: str, rows: np.ndarray, version: str | None, kind: RowKind) -> np.ndarray:
        return np.asarray(await self.runners[family].predict(rows, version, kind))

    async def card(self, family: str, version: str | None) -> dict[str, Any]:
        return await self.runners[family].card(version)
