"""Routes feature rows to the family's runner: the batchable default-model endpoints, or the
named-version endpoint; counts model calls (what single flight is measured by)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class RunnerClient(Protocol):
    async def predict(self, features: np.ndarray) -> np.ndarray: ...
    async def explain(self, features: np.ndarray) -> np.ndarray: ...
    async def predict_version(self, features: np.ndarray, version: str, explain: bool) -> np.ndarray: ...
    async def card(self, version: str | None = None) -> dict[str, Any]: ...


class AsyncPredictor:
    def __init__(self, runners: dict[str, RunnerClient]):
        self.runners = runners
        self.calls = 0

    async def predict(self, family: str, features: np.ndarray, version: str | None, explain: bool) -> np.ndarray:
        """``version`` None: the runner's default model through its batching endpoints."""
        self.calls += 1
        runner = self.runners[family]
        if version is not None:
            return np.asarray(await runner.predict_version(features, version, explain))
        return np.asarray(await (runner.explain(features) if explain else runner.predict(features)))

    async def card(self, family: str, version: str | None) -> dict[str, Any]:
        return await self.runners[family].card(version)
