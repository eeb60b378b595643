"""api/transport/rate_limit.py: the rate limit's count, shared by the workers of an instance
(SQLite) and by the instances (Redis), so that N means N."""

from __future__ import annotations

import asyncio

import pytest

from api.transport.rate_limit import MachineWindow, RedisWindow, SlidingWindow, build_limiter
from settings import RedisSettings
from tests.support import RedisServer, free_port, require_redis_server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_two_workers_on_one_file_share_the_limit(tmp_path):
    """Two windows on one file stand for two API workers: together they admit the limit, not twice it."""
    clock = Clock()
    path = tmp_path / "limit.sqlite"
    workers = [MachineWindow(3, lambda: path, window_s=60, clock=clock) for _ in range(2)]
    answers = [workers[i % 2].admit_now("address:10.0.0.1") for i in range(6)]
    assert answers[:3] == [None, None, None]
    assert answers[3:] == [60.0, 60.0, 60.0]  # the first request leaves the window in 60 s
    assert workers[1].admit_now("address:10.0.0.2") is None  # another client has its own count
    clock.now += 60.0
    assert workers[1].admit_now("address:10.0.0.1") is None
    for worker in workers:
        worker.close()


def test_the_machine_window_opens_its_file_only_when_first_asked(tmp_path):
    path = tmp_path / "nested" / "limit.sqlite"
    window = MachineWindow(1, lambda: path)
    assert not path.exists()
    assert window.admit_now("a") is None and path.exists()
    window.close()


def test_instances_on_one_redis_share_the_limit_and_fall_back_to_their_own_when_it_fails():
    server = RedisServer(require_redis_server(), free_port())
    server.start()
    try:

        async def run() -> tuple[list[float | None], list[float | None]]:
            settings = RedisSettings(server.url, 0.5)
            instances = [RedisWindow(2, settings, SlidingWindow(1)) for _ in range(2)]
            shared = [await instances[i % 2].admit("key:k1") for i in range(4)]
            server.stop()
            alone = [await instances[0].admit("key:k2") for _ in range(2)]  # the fallback's limit: 1
            return shared, alone

        shared, alone = asyncio.run(run())
    finally:
        server.stop()
    assert shared[:2] == [None, None] and all(wait is not None and 59 < wait <= 60 for wait in shared[2:])
    assert alone[0] is None and alone[1] is not None


@pytest.mark.parametrize(
    "shared_dir, redis, kind",
    [
        (None, None, SlidingWindow),
        ("/tmp/x/prometheus", None, MachineWindow),
        (None, RedisSettings("redis://h", 1), RedisWindow),
    ],
)
def test_the_count_is_kept_where_every_worker_sees_it(shared_dir, redis, kind):
    assert isinstance(build_limiter(5, shared_dir, redis), kind)
