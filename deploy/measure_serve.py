"""Measure what the Kubernetes manifests are sized from: start-up time and memory of one instance.

    .venv/bin/python deploy/measure_serve.py [--runs 3] [--load-seconds 20] [--json out.json]
    .venv/bin/python deploy/measure_serve.py --image ceramic-armor:latest   # the container, as in k8s

Per run: starts `bentoml serve service:ArmorService` with the pod's settings (API_WORKERS=1,
PREDICTION_WORKERS=1 unless set in the environment) in a fresh BENTOML_HOME whose `models/` links
to the real store, and records

* seconds from spawn until `/livez` and `/readyz` first answer 200, and until the first
  prediction answers 200 (model load + warm-up included);
* RSS and PSS summed over the `bentoml serve` process and all its children, at rest and after
  `--load-seconds` of new-material predictions from 8 concurrent clients (the peak is what a
  memory limit must hold);
* the number of processes.

With `--image` it runs the container instead, the way deploy/k8s runs it: podman, read-only root
file system, tmpfs on /tmp and on BENTOML_HOME=/var/run/bentoml (the deployment's emptyDirs), the
image's non-root user; start-up is counted from `podman run`.

The probe timings in deploy/k8s/base/deployment.yaml and the requests/limits are derived from
these figures (the derivation is written next to them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = json.loads((REPO / "tests" / "testdata" / "example_request.json").read_text())
MB = 1_000_000


def body(i: int) -> dict:
    return {
        **EXAMPLE,
        "processing": {**EXAMPLE["processing"], "sintering_temperature": 1300 + (i % 900)},
        "microstructure": {**EXAMPLE["microstructure"], "porosity": round(0.001 + (i // 900) * 1e-4, 5)},
        "include_feature_importance": False,
    }


def tree_memory(pid: int) -> dict:
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = pss = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        rss += info.rss
        pss += info.pss
    return {"processes": len(procs), "rss_mb": round(rss / MB, 1), "pss_mb": round(pss / MB, 1)}


def wait_for(
    url: str, started: float, process: subprocess.Popen, timeout_s: float, payload: dict | None = None
) -> float:
    """Seconds from `started` until `url` answers 200 (GET, or POST of `payload`)."""
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}")
        try:
            response = httpx.post(url, json=payload, timeout=2) if payload else httpx.get(url, timeout=2)
            if response.status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not 200 after {timeout_s} s")


async def load(url: str, seconds: float, clients: int = 8) -> int:
    done = 0
    deadline = time.monotonic() + seconds

    async def client(offset: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(timeout=10) as http:
            i = offset
            while time.monotonic() < deadline:
                (await http.post(url, json=body(i))).raise_for_status()
                done += 1
                i += clients

    await asyncio.gather(*(client(k) for k in range(clients)))
    return done


def start_process(port: int, home: Path, env: dict, src: Path) -> tuple[subprocess.Popen, int]:
    log = open(home / "serve.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "bentoml"), "serve", "service:ArmorService", "--port", str(port)],
        cwd=src,
        env={**env, "PYTHONPATH": str(src)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, process.pid


def start_container(port: int, image: str, env: dict) -> tuple[subprocess.Popen, str]:
    name = f"armor-measure-{port}"
    subprocess.run(["podman", "rm", "-f", name], capture_output=True)
    settings = [f"--env={k}={env[k]}" for k in ("API_WORKERS", "PREDICTION_WORKERS")]
    command = [
        "podman", "run", "--runtime", "runc", "--name", name, "--read-only", "--read-only-tmpfs=false",
        "--tmpfs", "/tmp:size=64m", "--tmpfs", "/var/run/bentoml:size=64m", "--env=BENTOML_HOME=/var/run/bentoml",
        "--env=CACHE_BACKEND=memory", *settings, "-p", f"127.0.0.1:{port}:3000", image,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return process, name


def container_pid(name: str) -> int:
    out = subprocess.run(["podman", "inspect", "-f", "{{.State.Pid}}", name], capture_output=True, text=True)
    return int(out.stdout.strip())


def one_run(port: int, load_seconds: float, image: str | None, src: Path) -> dict:
    home = Path(tempfile.mkdtemp(prefix="armor-measure-"))
    source = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    (home / "models").symlink_to(source / "models")
    env = {
        "API_WORKERS": "1",
        "PREDICTION_WORKERS": "1",
        **os.environ,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "PYTHONPATH": str(REPO),
    }
    started = time.monotonic()
    if image:
        process, name = start_container(port, image, env)
    else:
        process, pid = start_process(port, home, env, src)
    base = f"http://127.0.0.1:{port}"
    try:
        live_s = wait_for(base + "/livez", started, process, 300)
        ready_s = wait_for(base + "/readyz", started, process, 300)
        first_s = wait_for(base + "/api/v1/predict/mechanical", started, process, 300, payload=body(0))
        if image:
            pid = container_pid(name)
        time.sleep(2)
        at_rest = tree_memory(pid)
        t0 = time.monotonic()
        requests = asyncio.run(load(base + "/api/v1/predict/mechanical", load_seconds))
        elapsed = time.monotonic() - t0
        after = tree_memory(pid)
        return {
            "target": image or f"bentoml serve service:ArmorService ({src})",
            "processes": at_rest["processes"],
            "live_s": round(live_s, 2),
            "ready_s": round(ready_s, 2),
            "first_prediction_s": round(first_s, 2),
            "at_rest": at_rest,
            "after_load": after,
            "load": {"seconds": round(elapsed, 1), "requests": requests, "req_per_s": round(requests / elapsed)},
            "workers": {"API_WORKERS": env["API_WORKERS"], "PREDICTION_WORKERS": env["PREDICTION_WORKERS"]},
        }
    finally:
        if image:
            subprocess.run(["podman", "rm", "-f", "-t", "20", name], capture_output=True)
        else:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=3190)
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--src", type=Path, default=REPO, help="source tree to serve (default: this repository)")
    parser.add_argument("--image", help="measure this container image (podman) instead of bentoml serve")
    args = parser.parse_args()
    runs = []
    for n in range(args.runs):
        runs.append(one_run(args.port, args.load_seconds, args.image, args.src))
        print(json.dumps({"run": n + 1, **runs[-1]}), flush=True)
    summary = {
        "runs": runs,
        "ready_s_max": max(r["ready_s"] for r in runs),
        "first_prediction_s_max": max(r["first_prediction_s"] for r in runs),
        "rss_mb_max": max(max(r["at_rest"]["rss_mb"], r["after_load"]["rss_mb"]) for r in runs),
        "pss_mb_max": max(max(r["at_rest"]["pss_mb"], r["after_load"]["pss_mb"]) for r in runs),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
