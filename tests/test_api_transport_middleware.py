"""api/transport/middleware.py: body size limits and the body deadline, at the ASGI level."""

from __future__ import annotations

import asyncio
import json
import time

from starlette.types import Message, Receive, Scope, Send

from api.transport.middleware import BodySizeLimit


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def call(middleware: BodySizeLimit, headers: list[tuple[bytes, bytes]], parts: list[bytes | None]) -> list[Message]:
    """Run one request whose body arrives in ``parts``; None is a client that stops sending."""
    sent: list[Message] = []
    queue = list(parts)

    async def receive() -> Message:
        part = queue.pop(0) if queue else None
        if part is None:
            await asyncio.sleep(3600)  # a stalled client
        return {"type": "http.request", "body": part, "more_body": bool(queue)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/api/v1/predict/mechanical", "headers": headers}
    asyncio.run(asyncio.wait_for(middleware(scope, receive, send), 5))  # a hang fails, not blocks, the test
    return sent


def status_and_body(sent: list[Message]) -> tuple[int, dict]:
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def test_a_client_that_stops_sending_its_body_gets_408_within_the_deadline():
    middleware = BodySizeLimit(echo_app, max_bytes=1000, body_timeout_s=0.2)
    started = time.monotonic()
    sent = call(middleware, [(b"content-length", b"100")], [b"x" * 10, None])
    status, body = status_and_body(sent)
    assert status == 408 and body["error"]["type"] == "request_timeout"
    assert time.monotonic() - started < 2


def test_a_body_that_arrives_in_time_is_handed_on_whole():
    middleware = BodySizeLimit(echo_app, max_bytes=1000, body_timeout_s=0.2)
    sent = call(middleware, [(b"content-length", b"6")], [b"abc", b"def"])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"abcdef"


def test_a_declared_body_over_the_limit_is_413_at_once():
    middleware = BodySizeLimit(echo_app, max_bytes=10)
    status, body = status_and_body(call(middleware, [(b"content-length", b"11")], [b"x" * 11]))
    assert status == 413 and body["error"]["type"] == "body_too_large"
