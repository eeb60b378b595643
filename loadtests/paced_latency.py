"""Latency of new (uncached) materials at a fixed request rate, client-side and as the server
reports it (``processing_time_ms``), without Locust's client overhead.

    python -m loadtests.paced_latency http://127.0.0.1:3000 --rate 50 --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx

EXAMPLE = json.loads((Path(__file__).parent.parent / "tests" / "testdata" / "example_request.json").read_text())


def new_material(i: int, offset: int) -> dict:
    processing = {**EXAMPLE["processing"], "sintering_temperature": 1300 + i % 1000, "pressure": 1 + offset}
    return {**EXAMPLE, "processing": processing, "include_feature_importance": False}


async def run(url: str, rate: float, count: int) -> tuple[list[float], list[float]]:
    client_ms, server_ms = [], []
    offset = int(time.time()) % 199  # materials this server has not seen in earlier runs
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(i: int) -> None:
            started = time.perf_counter()
            response = await http.post(url, json=new_material(i, offset))
            client_ms.append((time.perf_counter() - started) * 1e3)
            server_ms.append(response.json()["processing_time_ms"])

        tasks = []
        for i in range(count):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return sorted(client_ms), sorted(server_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("host")
    parser.add_argument("--family", default="mechanical", choices=("mechanical", "ballistic"))
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    client_ms, server_ms = asyncio.run(
        run(f"{args.host.rstrip('/')}/api/v1/predict/{args.family}", args.rate, args.requests)
    )
    n = len(client_ms)
    print(
        f"{args.family} at {args.rate:g} req/s, {n} new materials: client p50 {client_ms[n // 2]:.1f} ms, "
        f"p95 {client_ms[int(n * 0.95)]:.1f} ms; server processing p50 {server_ms[n // 2]:.1f} ms, "
        f"p95 {server_ms[int(n * 0.95)]:.1f} ms"
    )


if __name__ == "__main__":
    main()
