"""The prediction log behind the three-instance cluster (issue 29): one database for all instances.

    PREDICTION_LOG=true DATABASE_URL=postgresql://... make cluster-up
    .venv/bin/python -m loadtests.cluster_log [--requests 900] [--only spread,query,client,drift,warmup]

Against a running cluster (deploy/cluster.sh, read from CLUSTER_DIR's cluster.env), through HAProxy:

1. spread: ``--requests`` predictions (mechanical, ballistic, hardness; half of them repeats) from 8
   clients; each answer's request id and the instance that served it (X-Served-By);
2. query: every page of GET /api/v1/predictions (JSON, then CSV) since the traffic began, following
   the cursor (each page may come from another instance): the rows per serving instance, and
   whether each 200 answer is there exactly once; the migrations recorded in the database
   (PostgreSQL: ``schema_migrations``, read with DATABASE_URL);
3. client: ``python -m client --url <HAProxy> log --format csv --max-rows 0`` over the same rows;
4. drift: GET /api/v1/drift;
5. warmup: instance 2 restarted (`cluster.sh stop-instance 2`, `start-instance 2`) three times:
   as is, with Redis (the shared cache) emptied first, and emptied with PREDICTIVE_WARMUP_TOP=0;
   its ``warmup_here`` and, after the last two, the share of cached answers when the spread
   phase's requests are replayed at it directly. `start-instance` takes the caller's environment:
   run this with the DATABASE_URL and PREDICTION_LOG the cluster was started with.

ADMIN_TOKEN, when the cluster has one, is read from the environment. Prints and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from loadtests.cluster import Cluster
from loadtests.materials import RequestPool, hardness_body, material_body

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 8
FAMILY_WEIGHTS = {"mechanical": 6, "ballistic": 3, "hardness": 1}
WARMUP_INSTANCE = 2


def body_of(rng: random.Random) -> tuple[str, dict[str, Any]]:
    family = rng.choices(list(FAMILY_WEIGHTS), weights=list(FAMILY_WEIGHTS.values()))[0]
    if family == "hardness":
        return family, hardness_body(rng)
    return family, material_body(rng, ballistic=family == "ballistic")


@dataclass
class Sent:
    """What the spread phase sent and what came back."""

    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    served_by: dict[str, str] = field(default_factory=dict)  # request id -> HAProxy's server name
    statuses: Counter[int] = field(default_factory=Counter)
    since: float = 0.0


async def spread(url: str, count: int) -> Sent:
    pool = RequestPool(body_of, repeat_prob=0.5, max_size=300, seed=29)
    sent = Sent(requests=[pool.next()[0] for _ in range(count)], since=time.time())
    todo = iter(sent.requests)
    async with httpx.AsyncClient(timeout=30) as http:

        async def client() -> None:
            for family, body in todo:
                answer = await http.post(f"{url}/api/v1/predict/{family}", json=body)
                sent.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    sent.served_by[answer.json()["request_id"]] = answer.headers.get("x-served-by", "?")

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return sent


def admin_headers() -> dict[str, str]:
    token = os.environ.get("ADMIN_TOKEN")
    return {"authorization": f"Bearer {token}"} if token else {}


async def log_pages(url: str, since: float, as_csv: bool) -> tuple[list[str], list[str]]:
    """The request ids of every row since ``since`` (all pages), and which instance served each page."""
    params: dict[str, Any] = {"since": since, "limit": 200, "format": "csv" if as_csv else "json"}
    ids: list[str] = []
    pages: list[str] = []
    async with httpx.AsyncClient(timeout=30, headers=admin_headers()) as http:
        while True:
            answer = await http.get(f"{url}/api/v1/predictions", params=params)
            answer.raise_for_status()
            pages.append(answer.headers.get("x-served-by", "?"))
            if as_csv:
                ids += [row["request_id"] for row in csv.DictReader(io.StringIO(answer.text))]
                cursor = answer.headers.get("x-next-cursor")
            else:
                body = answer.json()
                ids += [row["request_id"] for row in body["predictions"]]
                cursor = body["next_cursor"]
            if cursor is None:
                return ids, pages
            params["cursor"] = cursor


def rows_per_instance(sent: Sent, ids: list[str]) -> dict[str, Any]:
    found = Counter(ids)
    return {
        "rows": len(ids),
        "rows_by_instance": dict(sorted(Counter(sent.served_by.get(i, "not sent here") for i in ids).items())),
        "answers_missing": sum(1 for i in sent.served_by if i not in found),
        "rows_twice": sum(1 for n in found.values() if n > 1),
    }


async def status_without_token(url: str) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        return (await http.get(f"{url}/api/v1/predictions", params={"limit": 1})).status_code


async def migrations() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql://"):
        return {"skipped": "DATABASE_URL is not postgresql://..."}
    conn = await asyncpg.connect(url)
    try:
        records = await conn.fetch("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        return {"schema_migrations": [[r["version"], r["name"], round(r["applied_at"], 3)] for r in records]}
    finally:
        await conn.close()


async def query(cluster: Cluster, sent: Sent) -> dict[str, Any]:
    await asyncio.sleep(2.0)  # the other instances' writers (PREDICTION_LOG_FLUSH_S) catch up
    json_ids, json_pages = await log_pages(cluster.url, sent.since, as_csv=False)
    csv_ids, csv_pages = await log_pages(cluster.url, sent.since, as_csv=True)
    return {
        "json": rows_per_instance(sent, json_ids) | {"pages_by_instance": dict(sorted(Counter(json_pages).items()))},
        "csv": rows_per_instance(sent, csv_ids) | {"pages_by_instance": dict(sorted(Counter(csv_pages).items()))},
        "same_rows_json_and_csv": json_ids == csv_ids,
        "status_without_admin_token": await status_without_token(cluster.url),
        "migrations": await migrations(),
        "written_total_by_instance": await written_totals(cluster),
    }


async def written_totals(cluster: Cluster) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        figures = {f"i{n}": await performance(http, cluster, n) for n in (1, 2, 3)}
    return {name: {k: f[k] for k in ("backend", "written_total", "dropped_total")} for name, f in figures.items()}


async def performance(http: httpx.AsyncClient, cluster: Cluster, n: int) -> dict[str, Any]:
    log: dict[str, Any] = (await http.get(cluster.instance_url(n) + "/api/v1/performance")).json()["prediction_log"]
    return log


def client_log(cluster: Cluster, since: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".csv") as out:
        command = [sys.executable, "-m", "client", "--url", cluster.url, "log", "--since", str(since)]
        command += ["--format", "csv", "--limit", "250", "--max-rows", "0", "-o", out.name]
        env = os.environ | {"ARMOR_ADMIN_TOKEN": os.environ.get("ADMIN_TOKEN", "")}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
        rows = list(csv.DictReader(open(out.name, newline="")))  # noqa: SIM115 - the temporary file closes it
    return {"command": " ".join(command[1:]), "exit": done.returncode, "rows": len(rows), "said": done.stderr.strip()}


async def drift(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as http:
        answer = await http.get(f"{url}/api/v1/drift")
    if answer.status_code != 200:
        return {"status": answer.status_code, "body": answer.text[:300]}
    families = {}
    for family, report in answer.json()["families"].items():
        inputs = {name: f["ks_statistic"] for name, f in report.get("inputs", {}).items()}
        measured = {name: ks for name, ks in inputs.items() if ks is not None}
        families[family] = {
            "requests": report["requests"],
            "warned_share": report["warned_share"],
            "matches_model": report.get("reference", {}).get("matches_model"),
            "inputs_with_statistic": len(measured),
            "largest_ks": max(measured.items(), key=lambda kv: kv[1], default=None),
        }
    return {"status": 200, "served_by": answer.headers.get("x-served-by"), "families": families}


async def restart(cluster: Cluster, n: int, **env: str) -> float:
    """Stop (drain) and start instance ``n``; seconds from the start to its /readyz 200."""
    await asyncio.to_thread(cluster.script, "stop-instance", str(n))
    started = time.monotonic()
    await asyncio.to_thread(cluster.script, "start-instance", str(n), "--no-wait", **env)
    await cluster.wait_ready(n)
    return time.monotonic() - started


async def finished_warmup(http: httpx.AsyncClient, cluster: Cluster, n: int, limit_s: float = 40.0) -> dict[str, Any]:
    """Instance ``n``'s prediction-log figures once its warm-up is over (it goes on after /readyz)."""
    deadline = time.monotonic() + limit_s
    while True:
        log = await performance(http, cluster, n)
        warm = log["warmup_here"]
        if warm["finished"] or not warm["reason"] or time.monotonic() > deadline:
            return log
        await asyncio.sleep(0.5)


async def replay_hits(cluster: Cluster, n: int, requests: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The requests sent again, in order, to instance ``n`` directly (one client): cached answers."""
    cached, statuses = 0, Counter[int]()
    async with httpx.AsyncClient(timeout=30) as http:
        for family, body in requests:
            answer = await http.post(f"{cluster.instance_url(n)}/api/v1/predict/{family}", json=body)
            statuses[answer.status_code] += 1
            cached += answer.status_code == 200 and answer.json().get("cached") is True
    return {"requests": len(requests), "cached_percent": round(100 * cached / len(requests), 1), "statuses": statuses}


async def warmup(cluster: Cluster, sent: Sent) -> dict[str, Any]:
    n, report = WARMUP_INSTANCE, {}
    async with httpx.AsyncClient(timeout=30) as http:
        for case, flush_redis, env in (
            ("restart", False, {}),
            ("restart, Redis emptied", True, {}),
            ("restart, Redis emptied, PREDICTIVE_WARMUP_TOP=0", True, {"PREDICTIVE_WARMUP_TOP": "0"}),
        ):
            print(f"  warm-up: {case}", flush=True)
            if flush_redis:
                cluster.redis().flushall()
            seconds = await restart(cluster, n, **env)
            log = await finished_warmup(http, cluster, n)
            report[case] = {"start_to_ready_s": round(seconds, 1), "backend": log["backend"]}
            report[case]["warmup"] = log["warmup_here"]
            if flush_redis:
                report[case]["replay"] = await replay_hits(cluster, n, sent.requests)
    await restart(cluster, n)  # back to the environment the caller gave
    return report


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    cluster = Cluster.load(args.cluster_dir)
    phases = set(args.only.split(","))
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "url": cluster.url}
    print(f"spread: {args.requests} requests through {cluster.url}", flush=True)
    sent = await spread(cluster.url, args.requests)
    results["spread"] = {
        "statuses": dict(sent.statuses),
        "answers_by_instance": dict(sorted(Counter(sent.served_by.values()).items())),
    }
    if "query" in phases:
        print("query: GET /api/v1/predictions, JSON and CSV, every page", flush=True)
        results["query"] = await query(cluster, sent)
    if "client" in phases:
        print("client: python -m client log", flush=True)
        results["client"] = await asyncio.to_thread(client_log, cluster, sent.since)
    if "drift" in phases:
        print("drift: GET /api/v1/drift", flush=True)
        results["drift"] = await drift(cluster.url)
    if "warmup" in phases:
        print(f"warmup: instance {WARMUP_INSTANCE} restarted", flush=True)
        results["warmup"] = await warmup(cluster, sent)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-dir", type=Path, default=Path(os.environ.get("CLUSTER_DIR", "/tmp/armor-cluster")))
    parser.add_argument("--requests", type=int, default=900)
    parser.add_argument("--only", default="query,client,drift,warmup", help="comma list of query,client,drift,warmup")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    text = json.dumps(results, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
