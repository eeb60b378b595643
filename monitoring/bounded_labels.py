"""BentoML's traffic metrics labelled by route, not by whatever path a client sends.

BentoML's ``RunnerTrafficMetricsMiddleware`` (the outermost middleware of every service) labels
its request counters, histograms and gauges with the raw request path. Anyone could add about
20 series per made-up path: 5,000 requests for ``/x<random>`` made /metrics 20 MB, a scrape take
5 s and an API worker grow 148 -> 366 MB (issue 14, item 3). It runs before any middleware a
service can add, so the label cannot be fixed from inside; ``install`` swaps BentoML's class for a
subclass that labels every path the service does not route as ``UNROUTED`` and hands the inner
app the request untouched. BentoML builds its middleware list when a worker starts, after the
service module is imported: installing at import time is early enough.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bentoml._internal.server.http import instruments

UNROUTED = "/(unrouted)"
# BentoML's own routes (bentoml/_internal/server/base_app.py, http_app.py)
BENTOML_PATHS = frozenset({"/", "/docs.json", "/metrics", "/livez", "/readyz", "/healthz", "/schema.json"})
_ORIGINAL_PATH = "armor.original_path"

Scope = dict[str, Any]


def _bounded(base: type[Any], known: frozenset[str]) -> type[Any]:
    class BoundedPathTrafficMetrics(base):  # type: ignore[misc, valid-type]
        def __init__(self, app: Any, **options: Any) -> None:
            super().__init__(self._restore, **options)
            self._inner = app

        async def _restore(self, scope: Scope, receive: Any, send: Any) -> None:
            original = scope.get(_ORIGINAL_PATH)
            if original is not None:
                scope = {k: v for k, v in scope.items() if k != _ORIGINAL_PATH} | {"path": original}
            await self._inner(scope, receive, send)

        async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
            if scope["type"] in ("http", "websocket") and scope["path"] not in known:
                scope = {**scope, _ORIGINAL_PATH: scope["path"], "path": UNROUTED}
            await super().__call__(scope, receive, send)

    return BoundedPathTrafficMetrics


def install(routed_paths: Iterable[str]) -> None:
    """Label BentoML's traffic metrics by ``routed_paths`` (plus BentoML's own routes); idempotent."""
    current = instruments.RunnerTrafficMetricsMiddleware
    original = getattr(current, "_armor_original", current)
    bounded = _bounded(original, frozenset(routed_paths) | BENTOML_PATHS)
    bounded._armor_original = original
    instruments.RunnerTrafficMetricsMiddleware = bounded  # type: ignore[misc]
