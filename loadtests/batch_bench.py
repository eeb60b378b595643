"""Batch route against single requests, same rows, same run (issue 13). Prints numbers; not a test.

    python -m loadtests.batch_bench --url http://127.0.0.1:3000 [--rows 10000] [--family mechanical]
    python -m loadtests.batch_bench --in-process [--rows 10000] [--repeat 3] [--family mechanical]

1. ``--rows`` new candidate materials (loadtests.materials, seeded; each row distinct, so no
   response-cache hits) as single POSTs from ``--connections`` concurrent connections (httpx,
   asyncio): rows/s. With wrk on the PATH (mechanical), also wrk's single-request rate: its client
   is far cheaper than Python's, so it is the single route's upper bound on a shared machine.
2. Another ``--rows`` new materials (so neither run profits from the other's caches) as one CSV
   batch request (Accept: text/csv, streamed): rows/s, and the API workers' RSS sampled every
   10 ms during it (peak minus before). A request runs on one API worker; a third set of new
   rows is then sent as one batch request per API worker at once, as a client would to use them all.
Both runs share the machine with their client, as a user's would. Also prints the batch run's
result of a CSV with ``--bad`` malformed rows (predicted, errors, in order).

``--in-process``: no server. The API worker's own cost per row of a CSV batch (parse, validate,
keys and response cache, features, answers, CSV out), with the runners of the model store called
in the same process and their time left out (the hop is not measured): the batch pipeline of
``api.batch.routes`` driven directly, ``--repeat`` times with new rows each time, microseconds per
row by stage (``api.batch.flow.Stages``, plus the CSV reading and writing timed here).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from features.catalogue import inputs
from features.phases import PHASES
from loadtests.materials import material_body

COLUMNS = [*PHASES, *(spec.name for spec in inputs())]


def candidate_rows(n: int, seed: int, ballistic: bool = True) -> list[dict]:
    """Distinct realistic materials (the flags dropped), as single-route bodies."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        body = material_body(rng, ballistic=ballistic)
        body.pop("include_uncertainty"), body.pop("include_feature_importance")
        # a distinct holding time per row: every row is a new material for the caches
        body["processing"]["holding_time"] = round(1 + (i % 1400) + (seed % 97) / 100, 2)
        rows.append(body)
    return rows


def _flat(body: dict) -> dict[str, object]:
    return {**body["composition"], **body["processing"], **body["microstructure"], **body.get("armor", {})}


# Malformed rows, one of each kind in turn: the message the service must give is in the tests.
BAD_CELLS = (
    {"porosity": "0.5"},  # out of range
    {"sintering_temperature": "hot"},  # not a number
    {"SiC": "0.1", "B4C": "0", "Al2O3": "0", "WC": "0", "TiC": "0", "TiB2": "0", "ZrO2": "0", "AlN": "0",
     "Si3N4": "0", "other": "0"},  # fractions do not sum to 1
    {"atmosphere": "plasma"},  # unknown level
)  # fmt: skip


def candidates_csv(n: int, seed: int, bad: int = 0) -> tuple[str, list[int]]:
    """CSV text of ``n`` candidates, ``bad`` of them malformed (spread evenly); their row numbers."""
    every = n // bad if bad else n + 1
    bad_rows = [i for i in range(n) if bad and i % every == every // 2][:bad]
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    marked = set(bad_rows)
    for i, body in enumerate(candidate_rows(n, seed)):
        row = {c: "" for c in COLUMNS} | _flat(body)
        if i in marked:
            row |= BAD_CELLS[bad_rows.index(i) % len(BAD_CELLS)]
        writer.writerow(row)
    return out.getvalue(), bad_rows


def api_workers(url: str) -> list[psutil.Process]:
    """The API worker processes (``--service-name ceramic_armor``) of the bentoml serve that
    listens on the url's port."""
    port = httpx.URL(url).port
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "bentoml" in cmdline and " serve " in cmdline and f"--port {port}" in cmdline:
            children = process.children(recursive=True)
            return [c for c in children if "--service-name ceramic_armor" in " ".join(c.cmdline())]
    return []


@dataclass
class RssSampler:
    processes: list[psutil.Process]
    peak: int = 0
    running: bool = True

    def total(self) -> int:
        return sum(p.memory_info().rss for p in self.processes)

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.total())
            time.sleep(0.01)


async def singles(url: str, family: str, rows: list[dict], connections: int) -> float:
    """rows/s of single requests, ``connections`` in flight."""
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        queue = iter(rows)
        failures = 0

        async def worker() -> None:
            nonlocal failures
            for body in queue:
                response = await http.post(f"/api/v1/predict/{family}", json=body)
                failures += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(connections)])
        elapsed = time.perf_counter() - started
    if failures:
        print(f"  single requests: {failures} failed")
    return len(rows) / elapsed


def wrk_singles(url: str, family: str, connections: int) -> float | None:
    """Single requests of new materials from wrk (loadtests/wrk_new_material.lua), whose client costs
    far less CPU than Python's: the upper bound of the single route on this machine."""
    if shutil.which("wrk") is None:
        return None
    script = str(Path(__file__).with_name("wrk_new_material.lua"))
    command = ["wrk", "-t2", f"-c{connections}", "-d10s", "-s", script, f"{url}/api/v1/predict/{family}", "--"]
    output = subprocess.run([*command, str(random.randrange(10**6, 10**7))], capture_output=True, text=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return float(found.group(1)) if found else None


def batch(url: str, family: str, text: str) -> tuple[float, list[list[str]]]:
    """rows/s of one CSV batch request (streamed CSV answer), and the answer's rows."""
    started = time.perf_counter()
    headers = {"content-type": "text/csv", "accept": "text/csv", "accept-encoding": "gzip"}
    with httpx.stream("POST", f"{url}/api/v1/predict/{family}/batch", content=text, headers=headers, timeout=600) as r:
        r.raise_for_status()
        rows = list(csv.reader(r.iter_lines()))[1:]
    return len(rows) / (time.perf_counter() - started), rows


def parallel_batches(url: str, family: str, text: str, parts: int) -> float:
    """rows/s of the same rows as ``parts`` CSV batch requests sent at once (a request runs on one
    API worker: this is how a client uses all of them, as ``python -m client screen`` could)."""
    header, *lines = text.splitlines()
    share = -(-len(lines) // parts)
    texts = ["\n".join([header, *lines[i : i + share]]) + "\n" for i in range(0, len(lines), share)]
    results: list[float] = []
    started = time.perf_counter()
    threads = [threading.Thread(target=lambda t=t: results.append(batch(url, family, t)[0])) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(lines) / (time.perf_counter() - started)


class TimedRunner:
    """An in-process runner client that keeps the seconds its calls took (to leave them out)."""

    def __init__(self, core: Any):
        self.core, self.seconds = core, 0.0

    async def predict(self, features: np.ndarray, version: str | None, explain: bool, cache: bool = True) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.core.predict(features, explain=explain, version=version, cache=cache)
        finally:
            self.seconds += time.perf_counter() - started

    async def card(self, version: str | None = None) -> dict[str, Any]:
        return self.core.card(version).to_dict()


def in_process_core() -> tuple[Any, dict[str, TimedRunner]]:
    """A ServiceCore with the settings of the environment and the store's default models in-process."""
    from api.core import ServiceCore
    from monitoring.metrics import Metrics
    from runners.core import RunnerCore
    from settings import load_settings, worker_settings

    worker_settings()  # the process set up as a serving worker's (threads, GC)
    settings = load_settings(prometheus_multiproc_dir=None)
    runners = {}
    for family in ("mechanical", "ballistic"):
        runner = RunnerCore(family, None, settings.models.cache_max_mb, Metrics())
        runner.warm_up()
        runners[family] = TimedRunner(runner)
    return ServiceCore(settings, runners, root_pid=os.getpid()), runners


async def in_process_batch(core: Any, family: str, body: bytes) -> tuple[bytes, dict[str, Any], dict[str, float]]:
    """One CSV batch (CSV answer) through the pipeline of api.batch.routes: the answer, its summary
    and the seconds by stage."""
    from api.batch.flow import BatchRun
    from api.batch.io import csv_job, encoder_for, query_options
    from features.catalogue import TARGETS

    seconds = {"read CSV": 0.0}
    started = time.perf_counter()
    job = csv_job(body, query_options([]), core.settings.batch_routes.max_rows)
    seconds["read CSV"] += time.perf_counter() - started
    run = await BatchRun.start(core, family, job.options)

    def timed_blocks() -> Iterator[Any]:
        blocks = job.blocks(run.block_rows)
        while True:
            started = time.perf_counter()
            block = next(blocks, None)
            seconds["read CSV"] += time.perf_counter() - started
            if block is None:
                return
            yield block

    encoder = encoder_for("text/csv", TARGETS[family])
    pieces, writing = [encoder.head()], 0.0
    async for done in run.chunks(timed_blocks()):
        started = time.perf_counter()
        pieces.append(encoder.chunk(done))
        writing += time.perf_counter() - started
    summary = run.summary()
    pieces.append(encoder.tail(summary))
    return b"".join(pieces), summary, seconds | run.stages.seconds | {"write CSV": writing}


def in_process(rows: int, family: str, repeat: int, seed: int) -> None:
    """Prints the API worker's microseconds per row, in all and by stage, of ``repeat`` batches."""
    core, runners = in_process_core()
    print(f"{rows:,} new {family} rows a batch, runners in-process and their time left out; us per row:")
    for attempt in range(repeat):
        body = candidates_csv(rows, seed + attempt)[0].encode()
        for runner in runners.values():
            runner.seconds = 0.0
        started = time.perf_counter()
        _, summary, seconds = asyncio.run(in_process_batch(core, family, body))
        api_s = time.perf_counter() - started - sum(r.seconds for r in runners.values())
        seconds["runner call"] = seconds.pop("runner", 0.0) - sum(r.seconds for r in runners.values())  # hop, loop
        seconds["other"] = api_s - sum(seconds.values())
        stages = ", ".join(f"{stage} {s / rows * 1e6:.1f}" for stage, s in seconds.items())
        print(f"  API worker {api_s / rows * 1e6:5.1f} ({summary['predicted']:,} predicted): {stages}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--family", default="mechanical", choices=("mechanical", "ballistic"))
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--bad", type=int, default=100)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--in-process", action="store_true", help="no server: the API worker's cost per row")
    parser.add_argument("--repeat", type=int, default=3, help="with --in-process: batches, new rows each")
    args = parser.parse_args()
    if args.in_process:
        in_process(args.rows, args.family, args.repeat, args.seed)
        return

    workers = api_workers(args.url)
    single_rows = candidate_rows(args.rows, args.seed)
    batch_text, _ = candidates_csv(args.rows, args.seed + 1)
    print(f"{args.rows:,} new {args.family} rows each way; API workers found: {len(workers)}")

    single_rate = asyncio.run(singles(args.url, args.family, single_rows, args.connections))
    print(f"single requests, {args.connections} connections: {single_rate:,.0f} rows/s")

    wrk_rate = wrk_singles(args.url, args.family, args.connections) if args.family == "mechanical" else None
    if wrk_rate:
        print(f"single requests from wrk, {args.connections} connections: {wrk_rate:,.0f} rows/s")

    sampler = RssSampler(workers)
    before = sampler.total() if workers else 0
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    batch_rate, _ = batch(args.url, args.family, batch_text)
    sampler.running = False
    thread.join()
    versus_wrk = f", {batch_rate / wrk_rate:.1f}x wrk's" if wrk_rate else ""
    print(f"one CSV batch request: {batch_rate:,.0f} rows/s  (ratio {batch_rate / single_rate:.1f}x{versus_wrk})")
    if workers:
        growth = (sampler.peak - before) / 1e6
        print(
            f"API workers' RSS: {before / 1e6:.0f} MB before, peak {sampler.peak / 1e6:.0f} MB, growth {growth:.1f} MB"
        )

    if len(workers) > 1:
        split_text, _ = candidates_csv(args.rows, args.seed + 3)
        split_rate = parallel_batches(args.url, args.family, split_text, len(workers))
        versus_wrk = f", {split_rate / wrk_rate:.1f}x wrk's" if wrk_rate else ""
        print(
            f"the rows as {len(workers)} batch requests at once (one per API worker): {split_rate:,.0f} rows/s "
            f"(ratio {split_rate / single_rate:.1f}x{versus_wrk})"
        )

    bad_text, bad_rows = candidates_csv(args.rows, args.seed + 2, args.bad)
    _, rows = batch(args.url, args.family, bad_text)
    errors = [int(r[0]) for r in rows if r[1] != "200"]
    in_order = [int(r[0]) for r in rows] == list(range(args.rows))
    print(
        f"CSV with {args.bad} malformed rows: {len(rows) - len(errors):,} predicted, {len(errors)} row errors, "
        f"errors exactly on the malformed rows: {errors == bad_rows}, in order: {in_order}"
    )


if __name__ == "__main__":
    main()
