"""Single-request latency: 100 sequential requests on one keep-alive connection, cold (distinct
materials) and repeated (the same body), p50/p90/p99.

    python -m loadtests.sequential_latency http://127.0.0.1:3000 [mechanical|ballistic]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

EXAMPLE = json.loads((Path(__file__).parent.parent / "tests" / "testdata" / "example_request.json").read_text())


def measure(client: httpx.Client, url: str, bodies: list[dict]) -> tuple[list[float], dict]:
    latencies = []
    for body in bodies:
        started = time.perf_counter()
        response = client.post(url, json=body)
        latencies.append((time.perf_counter() - started) * 1e3)
        response.raise_for_status()
    return sorted(latencies), response.json()


def main() -> None:
    host, family = sys.argv[1].rstrip("/"), sys.argv[2] if len(sys.argv) > 2 else "mechanical"
    url = f"{host}/api/v1/predict/{family}"
    body = {**EXAMPLE, "include_feature_importance": False}
    stamp = int(time.time()) % 500  # fresh materials on every run
    processing = {**body["processing"], "pressure": 1 + stamp % 199}
    cold = [{**body, "processing": {**processing, "sintering_temperature": 1300 + i}} for i in range(100)]
    with httpx.Client(timeout=30) as client:
        for label, bodies in (("cold, 100 distinct", cold), ("repeated, same body", [body] * 100)):
            latencies, last = measure(client, url, bodies)
            print(
                f"{family} {label}: p50 {latencies[49]:.2f} ms, p90 {latencies[89]:.2f} ms, "
                f"p99 {latencies[98]:.2f} ms (last: cached={last['cached']}, "
                f"server {last['processing_time_ms']:.2f} ms)"
            )


if __name__ == "__main__":
    main()
