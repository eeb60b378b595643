"""api/core.py: the API worker's parts, built from settings, and closed on shutdown."""

import asyncio


def test_the_machine_layer_is_built_from_its_settings_and_closed_with_the_core(make_core, tmp_path):
    core = make_core(machine_shared_cache=True, machine_cache_dir=str(tmp_path))
    shared = core.response_cache.cache.shared
    assert (tmp_path / "armor_response_cache.sqlite").exists()

    async def start_then_close():
        core.sweeper.start()
        await core.close()

    asyncio.run(start_then_close())
    assert not core.sweeper.running
    assert asyncio.run(shared.get("k")) is None and shared.errors == 1  # closed: a counted miss


def test_without_a_shared_directory_the_response_cache_is_local_only(make_core):
    assert make_core().response_cache.cache.shared is None
    assert make_core(enable_response_caching=False).response_cache is None


def test_the_model_listing_is_read_from_the_store_once_per_ttl_however_many_ask(make_core, monkeypatch):
    """Issue 34: /api/v1/models cost 65-214 ms a call, each reading every model's metadata; a flood of
    it slowed the predictions tenfold. Concurrent and repeated calls within MODELS_TTL_S share one read."""
    from monitoring import report

    reads: list[dict] = []
    real = report.models

    def counted(serving):
        reads.append(serving)
        return real(serving)

    monkeypatch.setattr(report, "models", counted)
    core = make_core()

    async def ask(times: int) -> list[dict]:
        return await asyncio.gather(*[core.models() for _ in range(times)])

    first = asyncio.run(ask(8))
    again = asyncio.run(ask(4))
    assert len(reads) == 1 and all(listing == first[0] for listing in first + again)
    core._models = (core._models[0] - core.MODELS_TTL_S, core._models[1])  # the listing is now as old as the TTL
    asyncio.run(ask(2))
    assert len(reads) == 2


def test_without_a_response_cache_there_is_no_warm_up_to_report(make_core, tmp_path):
    """The warm-up puts answers into the response cache: without one it would compute them for
    nothing and report every material as already cached."""
    log = {"prediction_log": True, "database_url": f"sqlite:///{tmp_path}/log.sqlite3"}
    assert make_core(**log).warmer is not None
    assert make_core(enable_response_caching=False, **log).warmer is None
