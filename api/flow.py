"""One code path for both families: validated request -> cache -> features -> runner -> response.

    key      = canonical request + model tag (api.keys)
    cached?  -> the stored body, ``cached: true``
    else     -> single flight on the key: features (feature cache), one runner call, response;
                stored in the response cache (local, and Redis when CACHE_BACKEND=redis)
"""

from __future__ import annotations

import time
import uuid

import orjson

from api import domain, keys, responses
from api.errors import UnknownModelVersion
from api.feature_extractor import AsyncFeatureExtractor
from api.predictor import AsyncPredictor
from api.schemas import PredictionRequest
from caching import SingleFlight
from model_registry import store
from monitoring.instrumented import InstrumentedLayeredCache
from monitoring.metrics import Metrics
from monitoring.window import Ring
from runners.core import unpack


class ModelCards:
    """Registry cards by tag (read once per tag: a stored model never changes)."""

    def __init__(self):
        self._cards: dict[str, dict] = {}
        self._resolved: dict[tuple[str, str], str] = {}  # (family, version as asked) -> tag

    def get(self, family: str, tag: str) -> dict:
        if tag not in self._cards:
            self._cards[tag] = store.card(family, tag)
        return self._cards[tag]

    def resolve_version(self, family: str, version: str) -> str:
        """The full tag of a version; resolved once (a stored tag never changes), unknown ones every time."""
        if (family, version) not in self._resolved:
            try:
                self._resolved[family, version] = str(store.resolve(family, version).tag)
            except store.ModelNotFound as exc:
                raise UnknownModelVersion(f"{exc}; available {family} versions: {exc.available}",
                                          extra={"available": exc.available}) from None
        return self._resolved[family, version]


class PredictionFlow:
    def __init__(self, predictor: AsyncPredictor, extractor: AsyncFeatureExtractor, metrics: Metrics,
                 response_cache: InstrumentedLayeredCache | None, rings: dict[str, Ring]):
        self.predictor, self.extractor, self.metrics = predictor, extractor, metrics
        self.response_cache, self.rings = response_cache, rings
        self.cards = ModelCards()
        self.flight: SingleFlight[dict] = SingleFlight()

    async def _tag(self, family: str, version: str | None) -> str:
        default = await self.predictor.default_tag(family)
        return default if version is None else self.cards.resolve_version(family, version)

    async def _compute(self, family: str, request: PredictionRequest, material: dict, tag: str, key: str) -> dict:
        features = await self.extractor.extract(family, [request], [keys.material_key(family, material)])
        packed = await self.predictor.predict(family, features, tag, request.include_feature_importance)
        body = self._respond(family, request, material["composition"], tag, packed, features.shape[1])
        if self.response_cache is not None:
            await self.response_cache.set(key, orjson.dumps(body))
        return body

    def _respond(self, family: str, request: PredictionRequest, volume_fractions: dict, tag: str, packed,
                 n_features: int) -> dict:
        card = self.cards.get(family, tag)
        out = unpack(packed, len(card["targets"]), n_features)
        warnings, outside = domain.check(request, volume_fractions, card["feature_ranges"], family)
        if family == "ballistic":
            warnings += domain.ballistic_warnings(request, dict(zip(card["targets"], out.values[0], strict=True)))
        body: dict = {"predictions": responses.predictions(card, out.values[0], out.lower[0], out.upper[0],
                                                     request.include_uncertainty, outside),
                "feature_importance": None, "contribution_base": None}
        if request.include_feature_importance and out.contributions is not None:
            body["feature_importance"] = responses.feature_importance(card, out.contributions[0])
            body["contribution_base"] = {t: float(out.base[0, o]) for o, t in enumerate(card["targets"])}
        return body | {"model_info": responses.model_info(card), "warnings": warnings}

    async def _cached(self, key: str) -> dict | None:
        if self.response_cache is None:
            return None
        stored = await self.response_cache.get(key)
        return None if stored is None else orjson.loads(stored)

    async def predict(self, family: str, request: PredictionRequest, request_id: str | None = None) -> dict:
        started = time.perf_counter()
        if family == "ballistic":
            domain.refuse_unvalidated(request)
        material = keys.canonical_material(request, family)
        tag = await self._tag(family, request.model_version)
        key = keys.response_key(family, material, tag, request)
        stored = await self._cached(key)
        cached = stored is not None
        body = stored if stored is not None else dict(
            await self.flight.do(key, lambda: self._compute(family, request, material, tag, key)))
        elapsed = time.perf_counter() - started
        self._observe(family, elapsed)
        return body | {"request_id": request_id or uuid.uuid4().hex, "processing_time_ms": elapsed * 1e3,
                       "cached": cached}

    def _observe(self, family: str, seconds: float) -> None:
        self.metrics.request_seconds.labels(family).observe(seconds)
        self.rings[family].append(seconds)
