"""api/prediction/feature_extractor.py: features through the feature cache."""

from __future__ import annotations

import numpy as np

from api.prediction import keys
from api.prediction.feature_extractor import AsyncFeatureExtractor
from monitoring.instrumented import instrumented_local
from monitoring.metrics import Metrics
from settings import CacheLayerSettings
from tests.support import example, request


def test_cache_hit_avoids_recompute():
    metrics = Metrics()
    cache = instrumented_local("feature", CacheLayerSettings(True, 100, 60.0, 1.0), metrics)
    extractor = AsyncFeatureExtractor(metrics, cache)
    req = request()
    material_key = keys.material_key("mechanical", keys.canonical_material(req, "mechanical"))
    first = extractor.rows("mechanical", [req], [material_key])
    second = extractor.rows("mechanical", [req], [material_key])
    np.testing.assert_array_equal(first, second)
    assert cache is not None and (cache.stats()["hits"], cache.stats()["misses"]) == (1, 1)


def test_cached_and_computed_rows_keep_their_order():
    metrics = Metrics()
    cache = instrumented_local("feature", CacheLayerSettings(True, 100, 60.0, 1.0), metrics)
    extractor = AsyncFeatureExtractor(metrics, cache)
    materials = [request(processing={**example()["processing"], "sintering_temperature": t}) for t in (1700, 1900)]
    names = [keys.material_key("mechanical", keys.canonical_material(m, "mechanical")) for m in materials]
    extractor.rows("mechanical", materials[1:], names[1:])  # the second one is cached
    both = extractor.rows("mechanical", materials, names)
    np.testing.assert_allclose(both, extractor.featurize("mechanical", materials), rtol=1e-12)
