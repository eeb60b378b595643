"""Benchmark (not a test): what mounting the page costs the API routes, in microseconds per request
through the app (its middleware and router, as BentoML's traffic hook hands /api/v1/* to it), with
and without the page's routes. Two requests: GET /api/v1/catalogue (an API route: matched before the
page's routes are looked at) and GET /api/v1/no-such-route (a 404: the router tries every route,
the page's too). Rounds alternate between the two apps; the best round of each is printed.

python -m ui.bench
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI

from api.app import create_app
from ui.serve import PREFIX

REQUESTS = 1000
ROUNDS = 30


def _no_service() -> Any:
    raise RuntimeError("these requests never reach the service core")


def without_page(app: FastAPI) -> FastAPI:
    """The same app with the page's routes taken out."""
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in ("/", PREFIX)]
    return app


async def _request_us(app: FastAPI, path: str, n: int) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 3000),
    }

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    started = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / n * 1e6


async def _measure() -> dict[tuple[str, str], float]:
    apps = {"with page": create_app(_no_service, 65536), "without": without_page(create_app(_no_service, 65536))}
    best: dict[tuple[str, str], float] = {}
    for path in ("/api/v1/catalogue", "/api/v1/no-such-route"):
        for app in apps.values():
            await _request_us(app, path, 200)  # warm-up
        for _ in range(ROUNDS):
            for name, app in apps.items():
                us = await _request_us(app, path, REQUESTS)
                best[(path, name)] = min(us, best.get((path, name), float("inf")))
    return best


def main() -> None:
    best = asyncio.run(_measure())
    for path in ("/api/v1/catalogue", "/api/v1/no-such-route"):
        with_page, without = best[(path, "with page")], best[(path, "without")]
        ratio = with_page / without
        print(f"{path:24s} with the page {with_page:6.1f} us   without {without:6.1f} us   ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
