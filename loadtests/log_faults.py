"""The prediction log's PostgreSQL killed during traffic (issue 29): no request may fail, the rows
that could not be written are counted, and writing resumes once the server is back.

    python -m loadtests.log_faults [--seconds 60] [--clients 8]

Starts a PostgreSQL server (Debian's `postgresql`, tests/support.PostgresServer) and one
`bentoml serve` with DATABASE_URL on it (its own BENTOML_HOME holding a copy of the model store),
sends requests from ``--clients`` concurrent clients (70 % repeats of 500 bodies of
loadtests/materials.py) for ``--seconds``, kills the server (`pg_ctl -m immediate`) at one third
and starts it again at two thirds. Prints per phase the answers by status and the log rows
written with a time in that phase (the phases' edges: when the server was down, when it was up
again), and the service's own counts (written, dropped): every 200 answer is written or counted
as dropped. Rows queued while the writer waits out its back-off are written once the server is
back: only the batches tried while it is down are dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from loadtests.materials import RequestPool, material_body
from loadtests.redis_failover import instance_home
from tests.support import BentoServer, PostgresServer, require_postgres_bin_dir

PHASES = ("before", "database_down", "database_back")


async def drive(url: str, seconds: float, clients: int, server: PostgresServer) -> dict[str, Any]:
    pool = RequestPool(lambda rng: material_body(rng), repeat_prob=0.7, max_size=500, seed=29)
    statuses: dict[str, Counter[int]] = {p: Counter() for p in PHASES}
    edges = [time.time()]  # unix times: start, server killed, server started, end
    started = time.monotonic()

    def phase() -> str:
        elapsed = time.monotonic() - started
        return PHASES[min(2, int(3 * elapsed / seconds))]

    async def client(http: httpx.AsyncClient, rng: random.Random) -> None:
        while time.monotonic() - started < seconds:
            body, _ = pool.next(rng)
            current = phase()
            try:
                status = (await http.post(f"{url}/api/v1/predict/mechanical", json=body)).status_code
            except httpx.HTTPError:
                status = 0  # no answer at all
            statuses[current][status] += 1

    async def faults() -> None:
        await asyncio.sleep(seconds / 3)
        await asyncio.to_thread(server.kill)
        edges.append(time.time())
        await asyncio.sleep(seconds / 3)
        await asyncio.to_thread(server.start)
        edges.append(time.time())

    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(faults(), *(client(http, random.Random(i)) for i in range(clients)))
    edges.append(time.time() + 1.0)  # the last answers' rows
    return {"statuses": statuses, "bounds": {p: (edges[i], edges[i + 1]) for i, p in enumerate(PHASES)}}


async def written_per_phase(database: str, bounds: dict[str, tuple[float, float]]) -> dict[str, int]:
    conn = await asyncpg.connect(database)
    try:
        return {
            p: int(await conn.fetchval("SELECT COUNT(*) FROM predictions WHERE ts >= $1 AND ts < $2", lo, hi))
            for p, (lo, hi) in bounds.items()
        }
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="armor-log-faults-")
    database = PostgresServer(require_postgres_bin_dir(), root)
    database.start()
    home = instance_home(Path.home() / "bentoml")
    service = BentoServer({"BENTOML_HOME": home, "PREDICTION_LOG": "true", "DATABASE_URL": database.url})
    try:
        service.start()
        traffic = asyncio.run(drive(service.url, args.seconds, args.clients, database))
        time.sleep(3)  # the writers' next rounds (the back-off is at most 5 s)
        time.sleep(3)
        figures = httpx.get(f"{service.url}/api/v1/performance", timeout=30).json()["prediction_log"]
        written = asyncio.run(written_per_phase(database.url, traffic["bounds"]))
    finally:
        service.stop()
        database.stop()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    answered = sum(n for counts in traffic["statuses"].values() for s, n in counts.items() if s == 200)
    dropped = sum(figures["dropped_total"].values())
    result = {
        "seconds": args.seconds,
        "clients": args.clients,
        "answers_by_phase": {p: dict(c) for p, c in traffic["statuses"].items()},
        "failed_requests": sum(n for c in traffic["statuses"].values() for s, n in c.items() if s != 200),
        "rows_written_by_phase": written,
        "service": {k: figures[k] for k in ("written_total", "dropped_total", "last_error")},
        "answered_200": answered,
        "written_plus_dropped": figures["written_total"] + dropped,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
