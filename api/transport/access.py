"""Who may call the prediction routes, and how often: optional API keys and a per-client rate
limit, both off by default (API_KEYS, RATE_LIMIT_PER_MINUTE).

- With API_KEYS set, every POST under /api/v1/predict/, and the design search (/api/v1/design,
  thousands of predictions a request), needs ``X-API-Key: <one of them>``; otherwise 401
  ``unauthorized``. The other routes keep their own rules (ADMIN_TOKEN).
- With RATE_LIMIT_PER_MINUTE set, each key (or, without keys, each client address) may make that
  many prediction requests in any rolling 60 s; the next gets 429 ``rate_limited`` with
  Retry-After (the seconds until a slot frees). The count is shared by every API worker of the
  instance, and by every instance when CACHE_BACKEND=redis (api/transport/rate_limit.py).
- The client address is the connection's peer. uvicorn replaces it with the last untrusted
  address of ``X-Forwarded-For`` only when the peer is in TRUSTED_PROXIES (empty by default:
  no header is believed; service.py hands the list to uvicorn). ``Forwarded`` is never read.
- Keys are compared as bytes: a header value is bytes, and any byte may arrive.
"""

from __future__ import annotations

import hmac
import math
import os
from contextvars import ContextVar

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.transport.errors import ApiError, RateLimited, Unauthorized
from api.transport.rate_limit import WINDOW_S, RateLimiter
from predlog.entry import api_key_id

PROTECTED_PREFIXES = ("/api/v1/predict/", "/api/v1/design")
# the id of the API key of the request being answered (predlog.entry.api_key_id; never the key),
# for the prediction log; None without API_KEYS
CALLER_KEY_ID: ContextVar[str | None] = ContextVar("armor_caller_key_id", default=None)


def trust_forwarded_from(proxies: tuple[str, ...]) -> None:
    """Have uvicorn believe X-Forwarded-For from ``proxies`` only (TRUSTED_PROXIES). BentoML builds
    uvicorn's Config in each worker after importing the service, without ``forwarded_allow_ips``,
    so uvicorn reads FORWARDED_ALLOW_IPS, whose default 127.0.0.1 let any local client, or every
    client of a proxy on the same host, choose its own address. Called where the service is built."""
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(proxies)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


class AccessControl:
    """ASGI middleware applying API keys and the rate limit to the prediction routes."""

    def __init__(self, app: ASGIApp, api_keys: frozenset[str], limiter: RateLimiter | None):
        self.app, self.limiter = app, limiter
        self.api_keys = [key.encode() for key in api_keys]
        self.key_ids = {key: api_key_id(key) for key in self.api_keys}

    def _known(self, given: bytes | None) -> bool:
        return given is not None and any(hmac.compare_digest(given, key) for key in self.api_keys)

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request goes on, its key's id known to the prediction log."""
        token = CALLER_KEY_ID.set(self.key_ids.get(_header(scope, b"x-api-key") or b""))
        try:
            await self.app(scope, receive, send)
        finally:
            CALLER_KEY_ID.reset(token)

    def _client(self, scope: Scope) -> str:
        key = _header(scope, b"x-api-key")
        if self.api_keys and key is not None:
            return f"key:{key.decode('latin-1')}"
        address = scope.get("client") or ("unknown", 0)
        return f"address:{address[0]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(PROTECTED_PREFIXES):
            return await self.app(scope, receive, send)
        if self.api_keys and not self._known(_header(scope, b"x-api-key")):
            return await _refuse(send, Unauthorized("a prediction needs the header X-API-Key with a valid key"))
        wait_s = await self.limiter.admit(self._client(scope)) if self.limiter else None
        if wait_s is not None:
            retry = max(1, math.ceil(wait_s))
            limit = self.limiter.limit if self.limiter else 0
            error = RateLimited(f"more than {limit} prediction requests in {WINDOW_S:g} s; retry in {retry} s")
            return await _refuse(send, error, {"Retry-After": str(retry)})
        return await self._admitted(scope, receive, send)


async def _refuse(send: Send, error: ApiError, headers: dict[str, str] | None = None) -> None:
    response = JSONResponse(error.body(), status_code=int(error.status), headers=headers)
    await response({"type": "http"}, _nothing, send)


async def _nothing() -> dict[str, str]:
    return {"type": "http.disconnect"}
