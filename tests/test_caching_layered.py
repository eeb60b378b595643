"""caching/layered.py without a shared layer (with one: test_caching_shared_*)."""

from __future__ import annotations

import pytest

from caching import LayeredCache
from tests.support import FakeClock, make_cache

# --- LayeredCache without Redis ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_layered_cache_local_only() -> None:
    clock = FakeClock()
    layered = LayeredCache(make_cache(clock))
    assert await layered.get("k") is None
    await layered.set("k", b"v")
    assert await layered.get("k") == b"v"
    clock.advance(11.0)
    assert await layered.sweep_expired() == 1
    stats = await layered.stats()
    assert stats["backend"] == "memory"
    assert "shared" not in stats
    assert (stats["hits"], stats["misses"], stats["expirations"]) == (1, 1, 1)
    await layered.close()


@pytest.mark.asyncio
async def test_fill_local_without_a_shared_layer_says_whether_the_local_layer_holds_it() -> None:
    layered = LayeredCache(make_cache(FakeClock()))
    assert await layered.fill_local("k") is False
    await layered.set("k", b"v")
    assert await layered.fill_local("k") is True
    stats = await layered.stats()
    assert (stats["hits"], stats["misses"]) == (0, 0)
