"""Fault injection against a real `bentoml serve` (issue 14): a runner worker killed mid-traffic.

Only requests in flight at the kill may fail, and only as 503 with Retry-After; the service
answers again once BentoML has restarted the worker (the time is printed). Redis killed
mid-traffic: tests/test_e2e_redis.py; a corrupt model: tests/test_e2e_serve.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter

import httpx
import psutil
import pytest

from tests.support import BentoServer, example

CONCURRENCY = 8


def runner_workers(server: BentoServer) -> list[psutil.Process]:
    assert server.process is not None
    tree = psutil.Process(server.process.pid).children(recursive=True)
    return [p for p in tree if "armor_models" in " ".join(p.cmdline())]


def body(i: int) -> dict:
    material = example()
    processing = {**material["processing"], "sintering_temperature": 1300 + i % 1200, "holding_time": 1 + i % 1400}
    return {**material, "processing": processing, "include_feature_importance": False}


async def traffic(url: str, seconds: float, kill_at: float, kill) -> tuple[Counter, list[str], float | None, float]:
    """New materials from CONCURRENCY clients for ``seconds``; ``kill()`` once at ``kill_at``.
    Returns the status counts, the failures that are not a 503 with Retry-After, the seconds from
    the kill to the first 200 of a request sent after it (when there were 503s), and the longest
    wait for an answer of a request on the wire at or after the kill (requests held while the
    worker restarts, rather than refused)."""
    statuses: Counter = Counter()
    longest_after_kill = 0.0
    wrong: list[str] = []
    started = time.monotonic()
    killed_at: float | None = None
    recovered: float | None = None
    counter = iter(range(10**9))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal killed_at, recovered, longest_after_kill
        while time.monotonic() - started < seconds:
            if killed_at is None and time.monotonic() - started >= kill_at:
                killed_at = time.monotonic()
                kill()
            sent = time.monotonic()
            try:
                reply = await http.post(f"{url}/api/v1/predict/mechanical", json=body(next(counter)))
            except httpx.HTTPError as exc:
                statuses["transport error"] += 1
                wrong.append(type(exc).__name__)
                continue
            statuses[reply.status_code] += 1
            if killed_at is not None:
                longest_after_kill = max(longest_after_kill, time.monotonic() - sent)
            if reply.status_code == 503 and reply.headers.get("retry-after") and reply.json()["error"]:
                await asyncio.sleep(0.2)
            elif reply.status_code != 200:
                wrong.append(f"{reply.status_code}: {reply.text[:120]}")
            elif killed_at is not None and recovered is None and sent > killed_at and statuses[503]:
                recovered = time.monotonic() - killed_at

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*[client(http) for _ in range(CONCURRENCY)])
    return statuses, wrong, recovered, longest_after_kill


@pytest.fixture
def server(stored_tags, hardness_tag, bentoml_home):
    serve = BentoServer({"BENTOML_HOME": bentoml_home, "API_WORKERS": "1", "PREDICTION_WORKERS": "1"})
    serve.start()
    yield serve
    serve.stop()


def test_a_runner_worker_killed_mid_traffic_costs_only_503s_and_the_service_recovers(server):
    victim = runner_workers(server)[0]
    statuses, wrong, recovered, longest = asyncio.run(
        traffic(server.url, seconds=25, kill_at=5, kill=lambda: os.kill(victim.pid, signal.SIGKILL))
    )
    print(
        f"runner worker killed: {dict(statuses)}; first 200 after a 503 in {recovered} s; "
        f"longest answer after the kill {longest:.2f} s"
    )
    assert wrong == []
    assert statuses[200] > 0 and [p.pid for p in runner_workers(server)] != [victim.pid]
    # answered again after the restart (503s stop): the last requests succeeded
    assert httpx.post(f"{server.url}/api/v1/predict/mechanical", json=body(-1), timeout=30).status_code == 200
