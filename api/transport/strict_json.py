"""Request bodies parsed as strict JSON: an object with the same key twice is refused (400) instead
of the last value silently winning ({"SiC": 1.0, "SiC": 0.5} is ambiguous, not a composition).

FastAPI parses the body with ``Request.json``; the route class below hands it a request whose
``json`` rejects duplicate keys with a ``JSONDecodeError``, which FastAPI turns into the same
"invalid JSON" validation error as any other malformed body (api.transport.handlers maps it to 400).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(key)
        seen.add(key)
    return dict(pairs)


def loads_strict(body: bytes) -> Any:
    try:
        return json.loads(body, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(f"duplicate key {exc.args[0]!r}", body.decode("utf-8", "replace"), 0) from None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
