"""The design note's test commands (/work/shared/reference/design-note.md, "Testing"):

    python -m pytest tests/test_performance_optimizations.py -v
    python -m pytest tests/test_performance_optimizations.py::TestResponseCache -v
    python -m pytest tests/test_performance_optimizations.py::TestAsyncFeatureExtractor -v
    python -m pytest tests/test_performance_optimizations.py::TestAsyncPredictor -v

Each class checks what the note promises of that part against this codebase's objects. Where a
module's own tests already check a promise, the class names that test (imported, not copied: it
runs in both places); the tests written here check what no other module does.
"""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi.testclient import TestClient

from api.app import create_app
from api.prediction.feature_extractor import AsyncFeatureExtractor, PendingRows
from api.prediction.predictor import AsyncPredictor
from features.batch import MaterialBatch
from monitoring.metrics import Metrics
from tests import (
    test_api_prediction_coalescer,
    test_api_prediction_feature_extractor,
    test_api_prediction_flow,
    test_api_prediction_keys,
    test_api_prediction_predictor,
    test_caching_lru,
    test_features_featurizer,
)
from tests.support import CountingRunner, example, request

MECHANICAL = "/api/v1/predict/mechanical"


class TestResponseCache:
    """An identical request is answered from the response cache (caching/ TTLLRUCache behind
    api/prediction/flow.py), keyed by the normalised request, with TTL and LRU eviction, only
    after a successful prediction, and counted at /api/v1/performance."""

    test_second_identical_request_is_cached = staticmethod(
        test_api_prediction_flow.test_second_identical_request_is_cached
    )
    test_same_meaning_same_key = staticmethod(test_api_prediction_keys.test_same_meaning_same_key)
    test_weight_basis_equals_its_volume_equivalent = staticmethod(
        test_api_prediction_keys.test_weight_basis_equals_its_volume_equivalent
    )
    test_entry_is_served_until_ttl_then_expires = staticmethod(
        test_caching_lru.test_entry_is_served_until_ttl_then_expires
    )
    test_least_recent_is_evicted = staticmethod(
        test_caching_lru.test_access_refreshes_recency_and_least_recent_is_evicted
    )
    test_a_failed_prediction_is_not_cached = staticmethod(
        test_api_prediction_flow.test_failed_runner_call_reaches_every_waiter_and_is_not_cached
    )

    def test_response_cache_size_bounds_the_entries_of_the_service(self, make_core):
        core = make_core(response_cache_size=1)
        other = {**example(), "microstructure": {**example()["microstructure"], "porosity": 0.05}}
        with TestClient(create_app(lambda: core, 65536)) as http:
            cached = [http.post(MECHANICAL, json=body).json()["cached"] for body in (example(), example(), other)]
            cached.append(http.post(MECHANICAL, json=example()).json()["cached"])  # pushed out by ``other``
        assert cached == [False, True, False, False]

    test_disabled_cache_never_hits = staticmethod(test_api_prediction_flow.test_disabled_cache_never_hits)


class TestAsyncFeatureExtractor:
    """Features of many materials are computed in one vectorised call, cached by the normalised
    material so that a repeat is not recomputed, and concurrent requests' materials go to the
    runner's featuriser together (api/prediction/feature_extractor.py)."""

    test_cache_hit_avoids_recompute = staticmethod(
        test_api_prediction_feature_extractor.test_cache_hit_avoids_recompute
    )
    test_cached_and_computed_rows_keep_their_order = staticmethod(
        test_api_prediction_feature_extractor.test_cached_and_computed_rows_keep_their_order
    )
    test_batch_equals_rows_one_by_one = staticmethod(test_features_featurizer.test_batch_equals_rows_one_by_one)
    test_concurrent_new_materials_are_featurised_together = staticmethod(
        test_api_prediction_flow.test_concurrent_new_materials_are_featurised_together_with_the_answers_of_one_by_one
    )

    def test_pending_rows_of_several_requests_are_encoded_in_one_call_and_given_back_to_each(self, monkeypatch):
        extractor = AsyncFeatureExtractor(Metrics())
        callers = [
            [request()],
            [request(processing={**example()["processing"], "sintering_temperature": t}) for t in (1700, 1900)],
        ]
        encoded: list[int] = []
        from_materials = MaterialBatch.from_materials

        def counted(materials):
            encoded.append(len(materials))
            return from_materials(materials)

        monkeypatch.setattr(MaterialBatch, "from_materials", staticmethod(counted))
        rows = extractor.material_rows("mechanical", [PendingRows(materials) for materials in callers])
        assert encoded == [3]  # one encoding for the three materials of both callers
        monkeypatch.undo()
        for got, materials in zip(rows, callers, strict=True):
            np.testing.assert_array_equal(got, MaterialBatch.from_materials(materials).to_rows())


class TestAsyncPredictor:
    """Predictions run without blocking the event loop: concurrent callers of one kind share a
    runner call and each gets its own rows back, a lone request goes at once, one family's slow
    call does not hold up another's (api/prediction/predictor.py over the coalescer)."""

    test_packed_rows_carry_the_answering_model = staticmethod(
        test_api_prediction_predictor.test_packed_rows_carry_the_answering_model
    )
    test_rows_arriving_during_a_call_go_together = staticmethod(
        test_api_prediction_coalescer.test_rows_arriving_while_a_call_is_on_the_wire_go_together_each_getting_its_own_answer
    )
    test_a_lone_row_waits_for_nothing = staticmethod(test_api_prediction_coalescer.test_a_lone_row_waits_for_nothing)
    test_fifty_identical_concurrent_requests_make_one_model_call = staticmethod(
        test_api_prediction_flow.test_fifty_identical_concurrent_requests_make_one_model_call
    )

    def test_a_slow_family_does_not_hold_up_another(self, runner_cores):
        slow = CountingRunner(runner_cores["mechanical"], delay_s=0.2)
        quick = CountingRunner(runner_cores["ballistic"], delay_s=0.0)
        predictor = AsyncPredictor({"mechanical": slow, "ballistic": quick})
        finished: list[str] = []

        async def predict(family: str) -> None:
            features = np.zeros((1, runner_cores[family].n_features))
            await predictor.predict(family, features, None, explain=False)
            finished.append(family)

        async def both() -> None:
            await asyncio.gather(predict("mechanical"), predict("ballistic"))

        asyncio.run(both())
        assert finished == ["ballistic", "mechanical"] and (slow.calls, quick.calls) == (1, 1)
