"""Caching, feature extraction and prediction: the three documented test classes.

python -m pytest tests/test_performance_optimizations.py::TestResponseCache -v
python -m pytest tests/test_performance_optimizations.py::TestAsyncFeatureExtractor -v
python -m pytest tests/test_performance_optimizations.py::TestAsyncPredictor -v
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np

from api import keys
from api.feature_extractor import AsyncFeatureExtractor
from api.predictor import AsyncPredictor
from api.schemas import PredictionRequest
from caching import TTLLRUCache
from monitoring.instrumented import InstrumentedLocalCache
from monitoring.metrics import Metrics

EXAMPLE = json.loads((Path(__file__).parent / "testdata" / "example_request.json").read_text())


def request(**changes) -> PredictionRequest:
    return PredictionRequest.model_validate({**EXAMPLE, **changes})


def key(req: PredictionRequest, family: str = "mechanical", tag: str = "armor_mechanical:v1") -> str:
    return keys.response_key(family, keys.canonical_material(req, family), tag, req)


class TestResponseCache:
    def test_same_meaning_same_key(self):
        reordered = json.loads(json.dumps(EXAMPLE, sort_keys=True))
        reordered["composition"] = dict(reversed(list(EXAMPLE["composition"].items())))
        explicit_defaults = {**EXAMPLE, "armor": {"tile_thickness": 10.0, "threat": "7.62x51_m80"}}
        trailing_zero = {**EXAMPLE, "composition": {"SiC": 0.60, "B4C": 0.30, "Al2O3": 0.10}}
        base = key(request())
        assert key(PredictionRequest.model_validate(reordered)) == base
        assert key(PredictionRequest.model_validate(explicit_defaults), "ballistic") == key(request(), "ballistic")
        assert key(PredictionRequest.model_validate(trailing_zero)) == base

    def test_weight_basis_equals_its_volume_equivalent(self):
        weight = request(composition={"WC": 0.5, "SiC": 0.5, "basis": "weight"})
        material = keys.canonical_material(weight, "mechanical")
        volume = request(composition={p: v for p, v in material["composition"].items()})
        assert key(weight) == key(volume)

    def test_different_meaning_different_key(self):
        base = key(request())
        assert key(request(processing={**EXAMPLE["processing"], "sintering_temperature": 1801})) != base
        assert key(request(include_uncertainty=False)) != base
        assert key(request(), tag="armor_mechanical:v2") != base  # a new model never serves an old answer
        assert key(request(), family="ballistic") != base
        assert key(request(armor={"tile_thickness": 12}), "ballistic") != key(request(), "ballistic")

    def test_mechanical_key_ignores_armor_block(self):
        assert key(request(armor={"tile_thickness": 12})) == key(request())

    def test_second_identical_request_is_cached(self, client):
        first = client.post("/api/v1/predict/mechanical", json=EXAMPLE).json()
        second = client.post("/api/v1/predict/mechanical", json=EXAMPLE).json()
        assert first["cached"] is False and second["cached"] is True
        assert second["predictions"] == first["predictions"] and second["request_id"] != first["request_id"]
        stats = client.core.performance()["response_cache"]
        assert (stats["hits"], stats["misses"], stats["cache_size"]) == (1, 1, 1)
        assert stats["memory_usage_mb"] > 0

    def test_disabled_cache_never_hits(self, make_core):
        from fastapi.testclient import TestClient

        from api.app import create_app

        core = make_core(enable_response_caching=False)
        with TestClient(create_app(lambda: core, 65536)) as client:
            bodies = [client.post("/api/v1/predict/mechanical", json=EXAMPLE).json() for _ in range(2)]
        assert [b["cached"] for b in bodies] == [False, False]

    def test_ttl_expiry_with_injected_clock(self):
        now = [0.0]
        cache = TTLLRUCache(max_entries=10, ttl_seconds=3600, clock=lambda: now[0])
        cache.set("k", b"v")
        now[0] = 3599.0
        assert cache.get("k") == b"v"
        now[0] = 3600.5
        assert cache.get("k") is None and cache.stats().expirations == 1

    def test_lru_and_memory_cap(self):
        cache = TTLLRUCache(max_entries=2, ttl_seconds=None)
        cache.set("a", b"1")
        cache.set("b", b"2")
        cache.get("a")
        cache.set("c", b"3")
        assert cache.get("b") is None and cache.get("a") == b"1" and cache.stats().evictions == 1
        capped = TTLLRUCache(max_entries=100, max_memory_bytes=1000, ttl_seconds=None)
        for i in range(20):
            capped.set(f"k{i}", b"x" * 100)
        assert capped.memory_usage_bytes <= 1000 and capped.stats().evictions > 0


class CountingRunner:
    """A runner double that counts model calls and yields to the loop while 'computing'."""

    def __init__(self, core):
        self.core, self.calls, self.versioned = core, 0, 0

    async def predict(self, features):
        self.calls += 1
        await asyncio.sleep(0.05)
        return self.core.predict(features)

    async def explain(self, features):
        self.calls += 1
        await asyncio.sleep(0.05)
        return self.core.predict(features, explain=True)

    async def predict_version(self, features, version, explain):
        self.calls += 1
        self.versioned += 1
        return self.core.predict(features, explain=explain, version=version)

    async def card(self, version=None):
        return self.core.card(version).to_dict()


class TestAsyncFeatureExtractor:
    def test_cache_hit_avoids_recompute(self):
        metrics = Metrics()
        cache = InstrumentedLocalCache(TTLLRUCache(max_entries=100, ttl_seconds=60), "feature", metrics)
        extractor = AsyncFeatureExtractor(metrics, cache, workers=1)
        req = request()
        material_key = keys.material_key("mechanical", keys.canonical_material(req, "mechanical"))
        first = asyncio.run(extractor.extract("mechanical", [req], [material_key]))
        second = asyncio.run(extractor.extract("mechanical", [req], [material_key]))
        np.testing.assert_array_equal(first, second)
        assert extractor.inline_calls == 1 and cache.stats()["hits"] == 1
        extractor.close()

    def test_large_input_runs_in_pool_and_equals_inline(self):
        extractor = AsyncFeatureExtractor(Metrics(), None, workers=2, pool_threshold=8)
        materials = [
            request(processing={**EXAMPLE["processing"], "sintering_temperature": 1500 + i}) for i in range(20)
        ]
        pooled = asyncio.run(extractor.extract("ballistic", materials))
        inline = extractor.featurize("ballistic", materials)
        np.testing.assert_array_equal(pooled, inline)
        assert extractor.pool_calls == 1 and pooled.shape[0] == 20
        extractor.close()

    def test_event_loop_keeps_running_during_large_extraction(self):
        extractor = AsyncFeatureExtractor(Metrics(), None, workers=1, pool_threshold=1)
        materials = [request()] * 3000
        ticks = []

        async def ticker():
            for _ in range(1000):
                ticks.append(1)
                await asyncio.sleep(0)

        async def main():
            await asyncio.gather(extractor.extract("mechanical", materials), ticker())

        asyncio.run(main())
        assert len(ticks) == 1000
        extractor.close()


class TestAsyncPredictor:
    def test_fifty_identical_concurrent_requests_make_one_model_call(self, make_core, runner_cores):
        core = make_core()
        counting = CountingRunner(runner_cores["mechanical"])
        core.predictor.runners["mechanical"] = counting

        async def fifty():
            return await asyncio.gather(*[core.flow.predict("mechanical", request()) for _ in range(50)])

        bodies = asyncio.run(fifty())
        assert counting.calls == 1
        assert len(bodies) == 50 and all(b["predictions"] == bodies[0]["predictions"] for b in bodies)
        assert core.flow.flight.shared == 49

    def test_default_version_goes_to_the_batchable_endpoint(self, make_core, runner_cores, stored_tags):
        core = make_core()
        counting = CountingRunner(runner_cores["ballistic"])
        core.predictor.runners["ballistic"] = counting
        pinned_default = {
            **EXAMPLE,
            "model_version": stored_tags["ballistic"].split(":")[1],
            "microstructure": {**EXAMPLE["microstructure"], "porosity": 0.05},
        }  # not a cache hit
        for body in (EXAMPLE, pinned_default):
            asyncio.run(core.flow.predict("ballistic", PredictionRequest.model_validate(body)))
        assert counting.calls == 2 and counting.versioned == 0

    def test_packed_rows_carry_the_answering_model(self, runner_cores, stored_tags):
        from runners.contract import tag_id, unpack

        predictor = AsyncPredictor({"ballistic": CountingRunner(runner_cores["ballistic"])})
        features = np.zeros((1, runner_cores["ballistic"].n_features))
        packed = asyncio.run(predictor.predict("ballistic", features, None, explain=False))
        assert packed.shape == (1, 1 + 4 * 4) and predictor.calls == 1
        assert unpack(packed, 4, features.shape[1]).tag_id[0] == tag_id(stored_tags["ballistic"])

    def test_runner_prediction_cache_answers_repeated_rows(self, stored_tags):
        from runners.core import RunnerCore

        metrics = Metrics()
        cache = InstrumentedLocalCache(TTLLRUCache(max_entries=100, ttl_seconds=60), "prediction", metrics)
        core = RunnerCore("mechanical", stored_tags["mechanical"], 256, metrics, cache)
        rows = np.random.default_rng(1).random((3, core.n_features))
        first = core.predict(rows)
        again = core.predict(rows[[2, 0]])
        np.testing.assert_array_equal(again, first[[2, 0]])
        assert core.model_calls == 1 and cache.stats()["hits"] == 2

    def test_failed_runner_call_reaches_every_waiter_and_is_not_cached(self, make_core):
        core = make_core()

        class Failing:
            async def predict(self, features):
                await asyncio.sleep(0.01)
                raise RuntimeError("runner down")

            explain = predict

            async def card(self, version=None):
                return await real.card(version)

        real = core.predictor.runners["mechanical"]
        core.predictor.runners["mechanical"] = Failing()

        async def five():
            return await asyncio.gather(
                *[core.flow.predict("mechanical", request()) for _ in range(5)], return_exceptions=True
            )

        results = asyncio.run(five())
        assert all(isinstance(r, RuntimeError) for r in results)
        assert core.performance()["response_cache"]["cache_size"] == 0
