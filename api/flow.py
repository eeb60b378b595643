"""One code path for both families: validated request -> features -> runner -> response.

The runner is reached through ``RunnerClient``, a small protocol with three async calls, so
the flow is tested in-process with the runner core and served with BentoML's dependency.
"""

from __future__ import annotations

import time
import uuid
from typing import Protocol

import numpy as np

from api import domain, responses
from api.errors import UnknownModelVersion
from api.schemas import PredictionRequest
from features.batch import MaterialBatch
from features.featurizer import FAMILIES, Featurizer
from model_registry import store
from runners.core import unpack


class RunnerClient(Protocol):
    async def predict(self, features: np.ndarray) -> np.ndarray: ...
    async def explain(self, features: np.ndarray) -> np.ndarray: ...
    async def predict_version(self, features: np.ndarray, version: str, explain: bool) -> np.ndarray: ...
    async def describe(self) -> dict: ...


class ModelCards:
    """Registry cards by tag (read once per tag: a stored model never changes)."""

    def __init__(self):
        self._cards: dict[str, dict] = {}
        self.default_tags: dict[str, str] = {}

    def get(self, family: str, tag: str) -> dict:
        if tag not in self._cards:
            self._cards[tag] = store.card(family, tag)
        return self._cards[tag]

    def resolve_version(self, family: str, version: str) -> str:
        try:
            return str(store.resolve(family, version).tag)
        except store.ModelNotFound as exc:
            raise UnknownModelVersion(f"{exc}; available {family} versions: {exc.available}",
                                      extra={"available": exc.available}) from None


class PredictionFlow:
    def __init__(self, runners: dict[str, RunnerClient]):
        self.runners = runners
        self.featurizers = {f: Featurizer(f) for f in FAMILIES}
        self.cards = ModelCards()

    async def default_tag(self, family: str) -> str:
        """The runner's default model, asked once (the runner owns the pinning decision)."""
        if family not in self.cards.default_tags:
            description = await self.runners[family].describe()
            self.cards.default_tags[family] = description["model_cache"]["default"]
        return self.cards.default_tags[family]

    def features(self, family: str, request: PredictionRequest) -> np.ndarray:
        return self.featurizers[family].transform(MaterialBatch.from_materials([request]))

    async def _run(self, family: str, features: np.ndarray, request: PredictionRequest) -> tuple[np.ndarray, str]:
        default = await self.default_tag(family)
        version = request.model_version
        tag = default if version is None else self.cards.resolve_version(family, version)
        runner, explain = self.runners[family], request.include_feature_importance
        if tag != default:
            return await runner.predict_version(features, tag, explain), tag
        return await (runner.explain(features) if explain else runner.predict(features)), tag

    async def predict(self, family: str, request: PredictionRequest) -> dict:
        started = time.perf_counter()
        features = self.features(family, request)
        packed, tag = await self._run(family, features, request)
        card = self.cards.get(family, tag)
        out = unpack(np.asarray(packed), len(card["targets"]), features.shape[1])
        warnings, outside = domain.check(request, card["feature_ranges"], family)
        body = {"predictions": responses.predictions(card, out.values[0], out.lower[0], out.upper[0],
                                                     request.include_uncertainty, outside)}
        if request.include_feature_importance and out.contributions is not None:
            body["feature_importance"] = responses.feature_importance(card, out.contributions[0])
            body["contribution_base"] = {t: float(out.base[0, o]) for o, t in enumerate(card["targets"])}
        body.update(model_info=responses.model_info(card), warnings=warnings, request_id=uuid.uuid4().hex,
                    processing_time_ms=(time.perf_counter() - started) * 1e3, cached=False)
        return body
