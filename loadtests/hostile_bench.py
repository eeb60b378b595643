"""Hostile bodies against a one-worker service (issue 34): how long each takes to be refused or
answered, and how long a normal prediction sent meanwhile takes.

The bodies (``HOSTILE``): a one-row CSV whose header has 60,000 columns (gzip), a ~16 KB gzip of
16 MB of newlines as CSV, a ~16 KB gzip of 5.5 million ``{}`` as JSON materials, and the same 16 MB
of newlines sent as they are (one material, answered: the blank lines are read, off the loop). For each, a
prober sends a new material (a cache miss: the runner computes it) every ``PROBE_EVERY_S`` while
the hostile request is under way, and for ``PROBE_AFTER_S`` after it.

    .venv/bin/python -m loadtests.hostile_bench --port 3342                 # serves this checkout
    .venv/bin/python -m loadtests.hostile_bench --port 3343 --repo /tmp/main  # another checkout

It starts ``bentoml serve`` (API_WORKERS=1, PREDICTION_WORKERS=1) from ``--repo`` with the model
store of ``BENTOML_HOME`` (default ~/bentoml), and stops it at the end.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PROBE_EVERY_S = 0.05
PROBE_AFTER_S = 0.5
EXAMPLE = json.loads((ROOT / "tests" / "testdata" / "example_request.json").read_text())


def wide_csv(columns: int = 60_000) -> bytes:
    """One material whose header names ``columns`` columns (the required one, then made-up ones)."""
    names = ["sintering_temperature", *(f"x{i}" for i in range(columns - 1))]
    return gzip.compress((",".join(names) + "\n" + ",".join(["1800"] * columns) + "\n").encode())


def plain_newline_csv(newlines: int = 16_000_000) -> bytes:
    """A valid one-row CSV followed by ``newlines`` blank lines."""
    return b"SiC,sintering_temperature\n1.0,1800\n" + b"\n" * newlines


def newline_csv(newlines: int = 16_000_000) -> bytes:
    return gzip.compress(plain_newline_csv(newlines), 9)


def empty_objects_json(objects: int = 5_500_000) -> bytes:
    return gzip.compress(b'{"materials":[' + b",".join([b"{}"] * objects) + b"]}", 9)


@dataclass(frozen=True)
class Hostile:
    name: str
    body: Callable[[], bytes]
    content_type: str
    gzipped: bool = True

    def headers(self) -> dict[str, str]:
        return {"content-type": self.content_type} | ({"content-encoding": "gzip"} if self.gzipped else {})


HOSTILE = [
    Hostile("60,000-column CSV header (gzip)", wide_csv, "text/csv"),
    Hostile("16 MB of newlines as CSV (gzip)", newline_csv, "text/csv"),
    Hostile("5.5 M {} as JSON materials (gzip)", empty_objects_json, "application/json"),
    Hostile("16 MB of newlines as CSV (plain)", plain_newline_csv, "text/csv", gzipped=False),
]


def probe_body(i: int) -> dict:
    temperature, holding = 1300 + i % 1200, 1 + i // 1200 % 1400  # a new material (a cache miss) per i
    processing = {**EXAMPLE["processing"], "sintering_temperature": temperature, "holding_time": holding}
    return {**EXAMPLE, "processing": processing, "include_feature_importance": False}


def hostile_then_probe(url: str, hostile: Hostile, start: int) -> tuple[int, float, int, list[float]]:
    """(status, seconds) of the hostile request, its body's size, and the probes' seconds."""
    body, headers = hostile.body(), hostile.headers()
    outcome: list[tuple[int, float]] = []

    def send() -> None:
        began = time.perf_counter()
        status = httpx.post(f"{url}/api/v1/predict/mechanical/batch", content=body, headers=headers, timeout=300)
        outcome.append((status.status_code, time.perf_counter() - began))

    thread = threading.Thread(target=send)
    probes: list[float] = []
    with httpx.Client(base_url=url, timeout=300) as client:
        thread.start()
        ended_at: float | None = None
        i = start
        while ended_at is None or time.perf_counter() - ended_at < PROBE_AFTER_S:
            began = time.perf_counter()
            assert client.post("/api/v1/predict/mechanical", json=probe_body(i)).status_code == 200
            probes.append(time.perf_counter() - began)
            i += 1
            if ended_at is None and not thread.is_alive():
                ended_at = time.perf_counter()
            time.sleep(PROBE_EVERY_S)
    thread.join()
    return outcome[0][0], outcome[0][1], len(body), probes


def serve(repo: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(repo),
        "API_WORKERS": "1",
        "PREDICTION_WORKERS": "1",
        "BENTOML_HOME": os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml")),
    }
    binary = Path(sys.executable).parent / "bentoml"
    log = open(f"/tmp/hostile_bench-{port}.log", "w")  # noqa: SIM115  (closed with the process)
    process = subprocess.Popen(
        [str(binary), "serve", "service:ArmorService", "--port", str(port)],
        cwd=repo,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    raise TimeoutError(f"bentoml serve not ready; see {log.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout to serve (default: this one)")
    parser.add_argument("--only", default="", help="only the bodies whose name contains this text")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    process = serve(args.repo.resolve(), args.port)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:  # warm: the first answers load the models
            baseline = []
            for i in range(20):
                began = time.perf_counter()
                client.post("/api/v1/predict/mechanical", json=probe_body(10_000 + i))
                baseline.append(time.perf_counter() - began)
        print(f"{args.repo.resolve()} (git {_commit(args.repo)}), one API worker")
        print(f"idle prediction: p50 {statistics.median(baseline) * 1e3:.1f} ms, max {max(baseline) * 1e3:.1f} ms")
        columns = ("status", "seconds", "probes", "p50 ms", "max ms")
        print(f"{'hostile body':36} {'bytes':>10} " + " ".join(f"{c:>8}" for c in columns))
        for n, hostile in enumerate(h for h in HOSTILE if args.only in h.name):
            status, seconds, size, probes = hostile_then_probe(url, hostile, 20_000 * (n + 1))
            print(
                f"{hostile.name:36} {size:>10,} {status:>8} {seconds:>8.2f} {len(probes):>8} "
                f"{statistics.median(probes) * 1e3:>8.1f} {max(probes) * 1e3:>8.1f}"
            )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _commit(repo: Path) -> str:
    done = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "?"


if __name__ == "__main__":
    main()
