"""api/deadline.py: a response that does not start in time is a 504; one under way is not cut."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from api.deadline import ResponseDeadline


def _run(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(app({"type": "http", "path": "/api/v1/x"}, receive, send))
    return sent


def _answering_after(delay_s: float, chunks: int = 1, chunk_delay_s: float = 0.0) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(delay_s)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for index in range(chunks):
            await asyncio.sleep(chunk_delay_s)
            await send({"type": "http.response.body", "body": b"x", "more_body": index < chunks - 1})

    return app


def test_a_response_that_does_not_start_in_time_is_a_504() -> None:
    sent = _run(ResponseDeadline(_answering_after(1.0), timeout_s=0.05))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 504
    error = orjson.loads(sent[1]["body"])["error"]
    assert error["status"] == 504 and error["type"] == "timeout" and "request timeout" in error["message"]


def test_a_response_in_time_passes_untouched() -> None:
    sent = _run(ResponseDeadline(_answering_after(0.0), timeout_s=1.0))
    assert [(m["type"], m.get("status")) for m in sent] == [("http.response.start", 200), ("http.response.body", None)]


def test_a_response_under_way_is_not_cut_by_the_deadline() -> None:
    sent = _run(ResponseDeadline(_answering_after(0.0, chunks=4, chunk_delay_s=0.03), timeout_s=0.05))
    assert sent[0]["status"] == 200 and len(sent) == 5 and sent[-1]["more_body"] is False


def test_a_timeout_of_the_app_itself_is_not_answered_as_the_deadline() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise TimeoutError("a backend's own timeout")

    with pytest.raises(TimeoutError, match="a backend's own timeout"):
        _run(ResponseDeadline(app, timeout_s=1.0))
