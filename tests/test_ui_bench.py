"""ui/bench.py: the app it measures without the page differs from the served one by the page's
routes only, and a measured request is answered (the numbers themselves are the benchmark's)."""

from __future__ import annotations

import asyncio

from api.app import create_app
from ui.bench import _no_service, _request_us, without_page


def test_without_page_takes_out_the_page_routes_and_nothing_else():
    served = [getattr(r, "path", None) for r in create_app(_no_service, 65536).router.routes]
    bare = [getattr(r, "path", None) for r in without_page(create_app(_no_service, 65536)).router.routes]
    assert [p for p in served if p not in bare] == ["/", "/ui", "/ui"]  # two redirects and the mount
    assert [p for p in served if p in bare] == bare


def test_a_measured_request_takes_a_positive_time():
    assert asyncio.run(_request_us(create_app(_no_service, 65536), "/api/v1/catalogue", 3)) > 0
