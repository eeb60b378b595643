"""api/transport/deadline.py: a response that does not start in time is a 504; one under way is not cut."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from api.transport.deadline import ResponseDeadline


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


def _gathered(deadline: ResponseDeadline, plan: list[tuple[float, float]]) -> list[tuple[int, float]]:
    """Requests arriving at ``plan[i][0]`` s whose app answers ``plan[i][1]`` s later, on one loop
    and one deadline: (status, seconds from arrival to the response's start) of each."""

    async def one(arrival_s: float, answer_s: float) -> tuple[int, float]:
        await asyncio.sleep(arrival_s)
        loop = asyncio.get_running_loop()
        started, sent = loop.time(), []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                sent.append((message["status"], loop.time() - started))

        deadline.app = _answering_after(answer_s)
        await deadline({"type": "http", "path": "/api/v1/x"}, receive, send)
        return sent[0]

    async def main() -> list[tuple[int, float]]:
        return list(await asyncio.gather(*(one(a, s) for a, s in plan)))

    return asyncio.run(main())


def test_one_timer_cancels_each_late_request_at_its_own_deadline_and_no_other() -> None:
    deadline = ResponseDeadline(_answering_after(0.0), timeout_s=0.2)
    # the first is late; the second answers in time while the first waits; the third is late and
    # still waiting when the first times out (the timer is set again for it); the fourth arrives
    # once nothing waits (a new timer)
    answers = _gathered(deadline, [(0.0, 1.0), (0.05, 0.05), (0.1, 1.0), (0.5, 1.0)])
    assert [status for status, _ in answers] == [504, 200, 504, 504]
    assert all(0.2 <= seconds < 0.35 for status, seconds in answers if status == 504)
    assert not deadline._waiting  # nothing left behind


def test_a_cancellation_that_is_not_the_deadline_propagates() -> None:
    deadline = ResponseDeadline(_answering_after(1.0), timeout_s=5.0)

    async def main() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            raise AssertionError("nothing is sent for a request the client gave up")

        task = asyncio.create_task(deadline({"type": "http", "path": "/api/v1/x"}, receive, send))
        await asyncio.sleep(0.05)
        task.cancel()  # the client went away
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not deadline._waiting

    asyncio.run(main())
