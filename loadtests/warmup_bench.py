"""Hit rate of the response cache after a restart, with and without the predictive warm-up, on a
replayed log; and of a sweep, with and without the sweep prefetch (issue 29). In-process (the
API's ServiceCore over in-process runner cores serving the store's default models), so it
measures what the caches hold, not HTTP.

    python -m loadtests.warmup_bench --json docs/warmup-bench.json

1. "Yesterday": ``--log-requests`` requests (mechanical 70 %, ballistic 20 %, hardness 10 %)
   drawn from ``--materials`` distinct bodies of loadtests/materials.py with Zipf popularity
   (exponent ``--zipf``), answered with the prediction log on (a SQLite file in a temporary
   directory).
2. "Restart": a fresh service (empty caches) on the same log replays the next ``--replay``
   requests of the same traffic (another seed) without the warm-up, then another fresh one with
   it (PREDICTIVE_WARMUP_TOP = ``--top``); the hit rate is the share of answers with
   ``cached: true``.
3. Sweep: a client walks one input (porosity) in even steps, ``--sweep-points`` requests, with a
   pause of ``--think-ms`` between them, with the prefetch off and on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from api.core import ServiceCore
from api.prediction.schemas import HardnessRequest, PredictionRequest
from loadtests.materials import hardness_body, material_body
from monitoring.metrics import Metrics
from runners.core import RunnerCore
from runners.local import LocalRunnerClient
from settings import load_settings

FAMILY_SHARE = (("mechanical", 0.7), ("ballistic", 0.2), ("hardness", 0.1))
CONCURRENCY = 16  # requests of the replay in flight at once (as a few clients would)


def traffic_pool(materials: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    families = [f for f, _ in FAMILY_SHARE]
    weights = [w for _, w in FAMILY_SHARE]
    pool = []
    for _ in range(materials):
        family = rng.choices(families, weights)[0]
        body = hardness_body(rng) if family == "hardness" else material_body(rng, family == "ballistic", 0.1)
        pool.append((family, body))
    return pool


def draw(pool: list[tuple[str, dict[str, Any]]], n: int, zipf: float, seed: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) ** zipf for rank in range(len(pool))]
    return rng.choices(pool, weights, k=n)


def request_of(family: str, body: dict[str, Any]) -> PredictionRequest | HardnessRequest:
    return HardnessRequest.model_validate(body) if family == "hardness" else PredictionRequest.model_validate(body)


def runner_clients() -> dict[str, LocalRunnerClient]:
    cores = {f: RunnerCore(f, None, model_cache_max_mb=512, metrics=Metrics()) for f, _ in FAMILY_SHARE}
    for core in cores.values():
        core.warm_up()
    return {f: LocalRunnerClient(core) for f, core in cores.items()}


def service(database_url: str, **overrides: Any) -> ServiceCore:
    options: dict[str, Any] = {"prometheus_multiproc_dir": None, "prediction_log": True} | overrides
    settings = load_settings(database_url=database_url, **options)
    return ServiceCore(settings, runner_clients(), root_pid=os.getpid())


async def replay(core: ServiceCore, requests: list[tuple[str, dict[str, Any]]]) -> float:
    """The share of answers that came from the response cache."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(family: str, body: dict[str, Any]) -> bool:
        async with gate:
            return bool((await core.flow.predict(family, request_of(family, body)))["cached"])

    cached = await asyncio.gather(*(one(f, b) for f, b in requests))
    return sum(cached) / len(cached)


async def restart_figures(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    pool = traffic_pool(args.materials, args.seed)
    yesterday = service(database_url, predictive_warmup_top=0)
    started = time.perf_counter()
    log_hit_rate = await replay(yesterday, draw(pool, args.log_requests, args.zipf, args.seed + 1))
    await yesterday.close()
    logged_s = time.perf_counter() - started
    today = draw(pool, args.replay, args.zipf, args.seed + 2)
    cold = service(database_url, predictive_warmup_top=0, prediction_log=False)  # today stays out of the log
    without = await replay(cold, today)
    await cold.close()
    warm = service(database_url, predictive_warmup_top=args.top)
    assert warm.warmer is not None
    report = await warm.warmer.warm("benchmark")
    with_warmup = await replay(warm, today)
    await warm.close()
    return {
        "log_requests": args.log_requests,
        "log_hit_rate": round(log_hit_rate, 4),
        "log_seconds": round(logged_s, 1),
        "distinct_materials": args.materials,
        "zipf_exponent": args.zipf,
        "replayed": args.replay,
        "hit_rate_without_warmup": round(without, 4),
        "hit_rate_with_warmup": round(with_warmup, 4),
        "warmup": {
            "top": args.top,
            "materials": report.materials,
            "computed": report.computed,
            "failed": report.failed,
            "seconds": round(report.seconds, 3),
        },
    }


async def sweep(points: int, think_s: float, prefetch: int, database_url: str) -> float:
    core = service(database_url, predictive_warmup_top=0, sweep_prefetch_points=prefetch)
    base = material_body(random.Random(5))
    cached = []
    for i in range(points):
        body = base | {"microstructure": base["microstructure"] | {"porosity": round(0.002 * (i + 1), 6)}}
        cached.append((await core.flow.predict("mechanical", PredictionRequest.model_validate(body)))["cached"])
        await asyncio.sleep(think_s)
    await core.close()
    return sum(cached) / len(cached)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="armor-warmup-bench-") as folder:
        restart = await restart_figures(args, f"sqlite:///{Path(folder) / 'log.sqlite3'}")
        think = args.think_ms / 1e3
        sweeps = {
            f"prefetch_{points}": await sweep(
                args.sweep_points, think, points, f"sqlite:///{Path(folder) / 's.sqlite3'}"
            )
            for points in (0, 4)
        }
    return {"restart": restart, "sweep": {"points": args.sweep_points, "think_ms": args.think_ms, "hit_rate": sweeps}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--materials", type=int, default=3000)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--log-requests", type=int, default=5000)
    parser.add_argument("--replay", type=int, default=1000)
    parser.add_argument("--top", type=int, default=300)
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--sweep-points", type=int, default=50)
    parser.add_argument("--think-ms", type=float, default=50.0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
