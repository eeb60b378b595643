"""A runner client that calls a RunnerCore in the same process (no HTTP hop).

Used by the in-process tests and by the plain single-process baseline server of the load tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runners.contract import RowKind
from runners.core import RunnerCore


class LocalRunnerClient:
    def __init__(self, core: RunnerCore):
        self.core = core

    async def predict(self, rows: np.ndarray, version: str | None, kind: RowKind) -> np.ndarray:
        return self.core.answer(rows, kind, version)

    async def card(self, version: str | None = None) -> dict[str, Any]:
        return self.core.card(version).to_dict()
