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
