"""Routes feature rows to the family's runner: the batchable default-model endpoints, or the
named-version endpoint; counts model calls (what single flight is measured by)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class RunnerClient(Protocol):
    async def predict(self, features: np.ndarray) -> np.ndarray: ...
    async def explain(self, features: np.ndarray) -> np.ndarray: ...
    async def predict_version(self, features: np.ndarray, version: str, explain: bool) -> np.ndarray: ...
    async def describe(self) -> dict: ...


class AsyncPredictor:
    def __init__(self, runners: dict[str, RunnerClient]):
        self.runners = runners
        self.calls = 0
        self._default_tags: dict[str, str] = {}

    async def default_tag(self, family: str) -> str:
        """The runner's default model, asked once (the runner owns the pinning decision)."""
        if family not in self._default_tags:
            description = await self.runners[family].describe()
            self._default_tags[family] = description["model_cache"]["default"]
        return self._default_tags[family]

    async def predict(self, family: str, features: np.ndarray, tag: str, explain: bool) -> np.ndarray:
        self.calls += 1
        runner = self.runners[family]
        if tag != await self.default_tag(family):
            return np.asarray(await runner.predict_version(features, tag, explain))
        return np.asarray(await (runner.explain(features) if explain else runner.predict(features)))
