"""Two service instances on one Redis: shared hits, and Redis killed during traffic.

    python -m loadtests.redis_failover [--seconds 30]

Starts a redis-server and two `bentoml serve` instances (each with its own BENTOML_HOME holding
a copy of the model store, since bentoml cleans its metrics directory per home), sends
each material to one instance and then to the other for the given time, kills Redis at one third
and restarts it at two thirds, and prints failures, the per-phase share of cached answers (50 %
means every second request was a hit shared through Redis) and latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from tests.support import BentoServer, RedisServer, free_port, require_redis_server

EXAMPLE = json.loads((Path(__file__).parent.parent / "tests" / "testdata" / "example_request.json").read_text())


def body(i: int) -> dict:
    return {
        **EXAMPLE,
        "processing": {**EXAMPLE["processing"], "sintering_temperature": 1300 + i},
        "include_feature_importance": False,
    }


def instance_home(source: Path) -> str:
    home = tempfile.mkdtemp(prefix="armor-failover-")
    shutil.copytree(source / "models", Path(home) / "models")
    return home


async def drive(urls: list[str], seconds: float, redis: RedisServer) -> dict:
    phases = {"before": [], "redis_down": [], "redis_back": []}
    failures, started, i = 0, time.monotonic(), 0
    async with httpx.AsyncClient(timeout=10) as http:
        while (elapsed := time.monotonic() - started) < seconds:
            phase = "before" if elapsed < seconds / 3 else "redis_down" if elapsed < 2 * seconds / 3 else "redis_back"
            if phase == "redis_down" and redis.process is not None:
                redis.stop()
            if phase == "redis_back" and redis.process is None:
                redis.start()
            t0 = time.perf_counter()
            # each material goes first to one instance, then at once to the other: the second answer
            # can only be cached if the first instance's result reached it through Redis. Each phase
            # uses its own materials, so local caches from an earlier phase do not help.
            offset = {"before": 0, "redis_down": 400, "redis_back": 800}[phase]
            response = await http.post(f"{urls[i % 2]}/api/v1/predict/mechanical", json=body(offset + (i // 2) % 400))
            latency = time.perf_counter() - t0
            if response.status_code != 200:
                failures += 1
            else:
                phases[phase].append((latency, response.json()["cached"]))
            i += 1
    return {"requests": i, "failures": failures, **{p: _summary(v) for p, v in phases.items()}}


def _summary(rows: list) -> dict:
    if not rows:
        return {}
    latencies = sorted(r[0] for r in rows)
    return {
        "requests": len(rows),
        "cached_percent": round(100 * sum(r[1] for r in rows) / len(rows), 1),
        "p50_ms": round(latencies[len(rows) // 2] * 1e3, 2),
        "p99_ms": round(latencies[int(len(rows) * 0.99)] * 1e3, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    source = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    redis = RedisServer(require_redis_server(), free_port())
    redis.start()
    servers = [
        BentoServer({"BENTOML_HOME": instance_home(source), "CACHE_BACKEND": "redis", "REDIS_URL": redis.url})
        for _ in range(2)
    ]
    try:
        for server in servers:
            server.start()
        print(f"two instances up ({servers[0].url}, {servers[1].url}); traffic for {args.seconds:.0f} s", flush=True)
        result = asyncio.run(drive([s.url for s in servers], args.seconds, redis))
        print(json.dumps(result, indent=2))
    finally:
        for server in servers:
            server.stop()
        redis.stop()


if __name__ == "__main__":
    main()
