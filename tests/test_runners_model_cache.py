"""runners/model_cache.py: lazily loaded model versions under a memory budget."""

from model_registry import store


def test_model_cache_stays_under_budget_and_keeps_default(runner_cores, trained, stored_tags):
    from runners.model_cache import ModelCache

    default_bytes = runner_cores["mechanical"].models.default.memory_bytes
    cache = ModelCache("mechanical", stored_tags["mechanical"], max_bytes=default_bytes * 2.5)
    extra = [store.save(trained["mechanical"], dataset_sha256=str(i) * 64) for i in range(3)]
    try:
        for tag in extra:
            assert cache.get(tag).tag == tag
            assert cache.memory_bytes() <= default_bytes * 2.5
        assert cache.default.tag == stored_tags["mechanical"] and cache.evictions >= 1
    finally:
        import bentoml

        for tag in extra:
            bentoml.models.delete(tag)
