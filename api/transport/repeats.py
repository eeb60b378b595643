"""Exact repeats answered before the body is parsed.

A request whose bytes (path, content type, body) equal those of an earlier request this worker
answered with 200 validates, normalises and keys exactly as that one did: validation and the
canonical form depend on nothing else. So its response key is remembered (``RepeatMemo``) and a
repeat goes from the raw bytes straight to the response cache, skipping JSON parsing, pydantic
validation and the canonical key: on the cached path those were most of an API worker's own
work (issue 12, the 70 %-repeat load). What still applies to it: the access check and the body
limits (middlewares outside this one), the response cache itself (a repeat whose answer was
evicted or expired takes the full path), the model in service (an answer remembered under
another default model takes the full path) and the request metrics.

Only requests on the default model are remembered; anything that fails, or any body not seen
before, takes the full path unchanged.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

RepeatAnswer = Callable[[str, str], Awaitable[Response | None]]  # family, raw key -> the answer, if remembered
RAW_KEY = "armor.raw_key"  # where the middleware leaves the raw key in the ASGI scope for the route


class Remembered(NamedTuple):
    response_key: str
    model_tag: str
    echo: bytes
    canonical: dict[str, Any] | None
    options: tuple[bool, bool]


class RepeatMemo:
    """Raw request -> (response key, model tag, echo, canonical form, answer options) of its last 200, least
    recently used dropped; the echo is the rendered fields of the answer that repeat the request's
    own input (not stored with the cached body, api/prediction/flow.py), the same for every
    byte-equal request; the canonical form is what the prediction log records."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Remembered] = OrderedDict()

    @staticmethod
    def raw_key(path: str, content_type: bytes, body: bytes) -> str:
        digest = hashlib.blake2b(path.encode(), digest_size=20)
        digest.update(b"\0" + content_type + b"\0")
        digest.update(body)
        return digest.hexdigest()

    def remember(
        self,
        raw: str,
        response_key: str,
        model_tag: str,
        echo: bytes = b"",
        canonical: dict[str, Any] | None = None,
        options: tuple[bool, bool] = (True, False),
    ) -> None:
        self._entries[raw] = Remembered(response_key, model_tag, echo, canonical, options)
        self._entries.move_to_end(raw)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def recall(self, raw: str) -> Remembered | None:
        found = self._entries.get(raw)
        if found is not None:
            self._entries.move_to_end(raw)
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, raw: str) -> bool:
        """Whether ``raw`` is remembered (its place in the LRU order unchanged)."""
        return raw in self._entries


class RepeatShortcut:
    """ASGI middleware for the single-prediction routes (``paths``: path -> family): a remembered
    repeat is answered from the response cache; anything else goes on with its raw key in the
    scope (``RAW_KEY``) so the route can remember it. Runs inside the body-limit middleware,
    which has already read (and bounded) the body."""

    def __init__(self, app: ASGIApp, answer: RepeatAnswer, paths: Mapping[str, str]):
        self.app, self.answer, self.paths = app, answer, dict(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        family = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if family is None or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        messages, body = await _read_body(receive)
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        raw = RepeatMemo.raw_key(scope["path"], content_type, body)
        response = await self.answer(family, raw)
        if response is not None:
            return await response(scope, receive, send)
        scope[RAW_KEY] = raw
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        return await self.app(scope, replayed, send)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes]:
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    return messages, b"".join(m.get("body", b"") for m in messages)


def raw_key_of(scope: Mapping[str, Any]) -> str | None:
    key: str | None = scope.get(RAW_KEY)
    return key
