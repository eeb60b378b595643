"""Who may call the prediction routes, and how often: optional API keys and a per-client rate
limit, both off by default (API_KEYS, RATE_LIMIT_PER_MINUTE).

- With API_KEYS set, every POST under /api/v1/predict/ needs ``X-API-Key: <one of them>``;
  otherwise 401 ``unauthorized``. The other routes keep their own rules (ADMIN_TOKEN).
- With RATE_LIMIT_PER_MINUTE set, each key (or, without keys, each client address) may make that
  many prediction requests in any rolling 60 s; the next gets 429 ``rate_limited`` with
  Retry-After (the seconds until a slot frees). The count is kept per API worker process: with N
  workers a client can reach N times the limit in the worst case. A limit that must hold across
  workers and instances belongs in the gateway in front (HAProxy, an ingress).
"""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.transport.errors import ApiError, RateLimited, Unauthorized

PROTECTED_PREFIX = "/api/v1/predict/"
WINDOW_S = 60.0
MAX_TRACKED_CLIENTS = 10_000  # least recently seen clients are forgotten beyond this (memory bound)


class SlidingWindow:
    """At most ``limit`` events per client in any ``window_s``; the clients tracked are bounded."""

    def __init__(self, limit: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def admit(self, client: str) -> float | None:
        """None when admitted (and counted); else the seconds until the client may try again."""
        now = self._clock()
        events = self._events.pop(client, None) or deque()
        while events and events[0] <= now - self.window_s:
            events.popleft()
        self._events[client] = events
        if len(self._events) > MAX_TRACKED_CLIENTS:
            self._events.popitem(last=False)
        if len(events) >= self.limit:
            return events[0] + self.window_s - now
        events.append(now)
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class AccessControl:
    """ASGI middleware applying API keys and the rate limit to the prediction routes."""

    def __init__(self, app: ASGIApp, api_keys: frozenset[str], limiter: SlidingWindow | None):
        self.app, self.api_keys, self.limiter = app, api_keys, limiter

    def _known(self, given: str | None) -> bool:
        return given is not None and any(hmac.compare_digest(given, key) for key in self.api_keys)

    def _client(self, scope: Scope) -> str:
        key = _header(scope, b"x-api-key")
        if self.api_keys and key is not None:
            return f"key:{key}"
        address = scope.get("client") or ("unknown", 0)
        return f"address:{address[0]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(PROTECTED_PREFIX):
            return await self.app(scope, receive, send)
        if self.api_keys and not self._known(_header(scope, b"x-api-key")):
            return await _refuse(send, Unauthorized("a prediction needs the header X-API-Key with a valid key"))
        wait_s = self.limiter.admit(self._client(scope)) if self.limiter else None
        if wait_s is not None:
            retry = max(1, math.ceil(wait_s))
            limit = self.limiter.limit if self.limiter else 0
            error = RateLimited(f"more than {limit} prediction requests in {WINDOW_S:g} s; retry in {retry} s")
            return await _refuse(send, error, {"Retry-After": str(retry)})
        return await self.app(scope, receive, send)


async def _refuse(send: Send, error: ApiError, headers: dict[str, str] | None = None) -> None:
    response = JSONResponse(error.body(), status_code=int(error.status), headers=headers)
    await response({"type": "http"}, _nothing, send)


async def _nothing() -> dict[str, str]:
    return {"type": "http.disconnect"}
