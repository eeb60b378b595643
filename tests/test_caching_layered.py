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
