"""Run the load-test scenarios and a saturation ramp; write reports to loadtests/reports/<timestamp>/.

    python -m loadtests.run [--host URL] [--duration 60] [--rate 50] [--quick]

Without --host it builds the Bento (`bentoml build`), serves it on a free local port and stops it
at the end. Exit status: 0 when every fixed-rate scenario meets its target, 1 when one misses,
2 when the service could not be built or started. The saturation ramp is reported, never gating.
See loadtests/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "loadtests"
LOCUSTFILE = HERE / "locustfile.py"
REPORTS = HERE / "reports"
BENTOML = Path(sys.executable).parent / "bentoml"
READY_TIMEOUT_S = 120
MAX_RATE_PER_USER = 5.0  # req/s per simulated user: a 200 ms budget per request before a user falls behind

# scenario -> (Locust user class, p95 target in ms). Mixed is ~70 % repeats that the response
# cache should answer, hence the tighter target; the single-family scenarios use the same 70 %
# repeat pool but are held to 100 ms, like the uncached cold scenario.
SCENARIOS = {
    "mechanical": ("MechanicalUser", 100.0),
    "ballistic": ("BallisticUser", 100.0),
    "mixed": ("MixedUser", 50.0),
    "cold": ("ColdUser", 100.0),
    "hardness": ("HardnessUser", 100.0),
}
MIN_RATE_SHARE = 0.9  # achieved/target rate below this means the test did not apply the load
RAMP_STEPS = (100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1500, 2000)
RAMP_P99_MS = 200.0
TEMP_BENTOFILE = """\
# Written by loadtests/run.py because /work/main has no bentofile.yaml; removed after the build.
service: "service:ArmorService"
include: ["*.py", "api/**", "features/**", "model_registry/**", "runners/**", "caching/**",
          "monitoring/**", "settings.py"]
exclude: ["tests/", "loadtests/", "__pycache__/"]
python:
  requirements_txt: "./requirements.lock"
models: ["armor_mechanical:latest", "armor_ballistic:latest"]
"""


def log(msg: str) -> None:
    print(f"[loadtest {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- service lifecycle


def quiet_env() -> dict:
    # No usage tracking: this test must only talk to 127.0.0.1.
    return {**os.environ, "BENTOML_DO_NOT_TRACK": "True", "PYTHONPATH": str(ROOT)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_bento() -> str:
    """`bentoml build` in the repo; returns the Bento tag. Uses a temporary bentofile if none exists."""
    cmd = [str(BENTOML), "build", "--output", "tag"]
    temp = None
    if not (ROOT / "bentofile.yaml").exists():
        temp = HERE / "bentofile.loadtest.yaml"
        temp.write_text(TEMP_BENTOFILE)
        cmd += ["-f", str(temp)]
        log(f"no bentofile.yaml: building with temporary {temp.relative_to(ROOT)}")
    try:
        out = subprocess.run(cmd, cwd=ROOT, env=quiet_env(), capture_output=True, text=True, timeout=600)
    finally:
        if temp:
            temp.unlink(missing_ok=True)
    tags = [line.split("__tag__:", 1)[1].strip() for line in out.stdout.splitlines() if "__tag__:" in line]
    if out.returncode != 0 or not tags:
        raise RuntimeError(f"bentoml build failed ({out.returncode}):\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return tags[-1]


def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode} before it was ready")
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        time.sleep(1)
    raise RuntimeError(f"{url}/readyz not 200 within {timeout:.0f} s")


def stop_service(proc: subprocess.Popen) -> None:
    """SIGTERM the arbiter's group, then SIGTERM/SIGKILL any worker still alive.

    BentoML (circus) starts each worker in its own session, so the arbiter's process group does
    not contain them: the workers are snapshotted first and cleaned up by pid if the arbiter's
    graceful shutdown leaves any behind.
    """
    workers: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        workers = psutil.Process(proc.pid).children(recursive=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        workers = [w for w in workers if w.is_running()]
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                worker.send_signal(sig)
        psutil.wait_procs(workers, timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def served_bento(tag: str, out_dir: Path):
    """Serve the Bento on a free local port; yields (url, pid). Always stops the server."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log(f"serving {tag} on {url} (log: {out_dir.name}/service.log)")
    with open(out_dir / "service.log", "w") as service_log:
        proc = subprocess.Popen(
            [str(BENTOML), "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=quiet_env(),
            stdout=service_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # own process group, signalled as one
        try:
            wait_ready(url, proc)
            yield url, proc.pid
        finally:
            log("stopping the service")
            stop_service(proc)


@contextlib.contextmanager
def served_plain(out_dir: Path):
    """The plain single-process baseline (loadtests/plain_server.py) on a free port; yields (url, pid)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log(f"serving the plain baseline on {url}")
    with open(out_dir / "baseline.log", "w") as service_log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loadtests.plain_server", "--workers", "1", "--port", str(port)],
            cwd=ROOT,
            env=quiet_env(),
            stdout=service_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(url, proc)
            yield url, proc.pid
        finally:
            stop_service(proc)


def baseline_ramp(args: argparse.Namespace, out_dir: Path) -> dict:
    """The same saturation ramp against the plain baseline, for the side-by-side ratio."""
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    directory = out_dir / "baseline"
    directory.mkdir(exist_ok=True)
    with served_plain(out_dir) as (url, _pid):
        warm_up(url)
        return saturation_ramp(url, steps, args.step_duration, directory, args.seed)


def external_service_pid(url: str) -> int | None:
    """Best effort for --host: the top `bentoml` process listening on the URL's local port."""
    port = urllib.parse.urlsplit(url).port or 80
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                proc = psutil.Process(conn.pid)
                while proc.parent() and "bentoml" in " ".join(proc.parent().cmdline()):
                    proc = proc.parent()
                return proc.pid
    return None


# --------------------------------------------------------------------------- measurements


def memory_mb(pid: int | None) -> dict | None:
    """RSS (double-counts shared pages) and PSS (shares them out) of the process and all children."""
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    rss = pss = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
    return {"processes": len(procs), "rss_mb": round(rss / 2**20, 1), "pss_mb": round(pss / 2**20, 1)}


def warm_up(url: str) -> None:
    """A few untimed requests so lazy model loading and first-call costs stay out of the first scenario."""
    sys.path.insert(0, str(ROOT))
    import random

    from loadtests.materials import material_body

    rng = random.Random(7)
    for kind in ("mechanical", "ballistic") * 4:
        body = material_body(rng, ballistic=kind == "ballistic", importance_prob=0.5)
        req = urllib.request.Request(
            f"{url}/api/v1/predict/{kind}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with contextlib.suppress(OSError, urllib.error.URLError):
            urllib.request.urlopen(req, timeout=30).read()


@dataclass
class Result:
    """One Locust run, from the "Aggregated" row of its *_stats.csv."""

    name: str
    user_class: str
    target_rate: float
    users: int
    duration_s: int
    rps: float = 0.0
    requests: int = 0
    failures: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    cached_share: float | None = None  # share of OK responses with "cached": true
    client_cpu_warning: bool = False  # Locust said it was CPU-bound: latencies include client delay
    error: str | None = None
    checks: dict = field(default_factory=dict)
    passed: bool | None = None


def number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # "N/A" when nothing was sent


def read_aggregated(prefix: Path, result: Result) -> None:
    with open(f"{prefix}_stats.csv", newline="") as fh:
        row = next((r for r in csv.DictReader(fh) if r["Name"] == "Aggregated"), None)
    if row is None:
        result.error = "no Aggregated row in stats CSV"
        return
    result.requests, result.failures = int(row["Request Count"]), int(row["Failure Count"])
    result.rps = round(number(row["Requests/s"]) or 0.0, 1)
    result.p50_ms, result.p95_ms, result.p99_ms = (number(row[k]) for k in ("50%", "95%", "99%"))


def read_cached_share(path: Path) -> float | None:
    if not path.exists():
        return None
    counts = json.loads(path.read_text()).values()
    cached, total = sum(c["cached"] for c in counts), sum(c["cached"] + c["uncached"] for c in counts)
    return round(cached / total, 3) if total else None


def run_locust(name: str, user_class: str, url: str, rate: float, duration: int, out_dir: Path, seed: int) -> Result:
    """One headless Locust run at a fixed total rate: N users, each paced at rate/N req/s."""
    users = max(1, math.ceil(rate / MAX_RATE_PER_USER))
    result = Result(name, user_class, rate, users, duration)
    prefix = out_dir / name
    env = {
        **quiet_env(),
        "LOADTEST_RATE_PER_USER": str(rate / users),
        "LOADTEST_SEED": str(seed),
        "LOADTEST_COUNTS_FILE": f"{prefix}_cached.json",
    }
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.html",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{duration}s",
        "--host",
        url,
        "--exit-code-on-error",
        "0",
        user_class,
    ]
    with open(f"{prefix}_locust.log", "w") as locust_log:
        try:
            proc = subprocess.run(
                cmd, cwd=ROOT, env=env, stdout=locust_log, stderr=subprocess.STDOUT, timeout=duration + 120
            )
        except subprocess.TimeoutExpired:
            result.error = "locust did not finish in time"
            return result
    if proc.returncode != 0:
        result.error = f"locust exited with {proc.returncode} (see {prefix.name}_locust.log)"
    if Path(f"{prefix}_stats.csv").exists():
        read_aggregated(prefix, result)
    result.cached_share = read_cached_share(Path(f"{prefix}_cached.json"))
    result.client_cpu_warning = "CPU usage above" in Path(f"{prefix}_locust.log").read_text()
    return result


# --------------------------------------------------------------------------- scenarios and ramp


def _judge(result: Result, percentile: str, target_ms: float) -> None:
    """No failures, the percentile within its target, and the load actually applied."""
    measured = getattr(result, f"{percentile}_ms")
    result.checks = {
        "zero_failures": result.requests > 0 and result.failures == 0 and result.error is None,
        f"{percentile}<={target_ms:g}ms": (measured if measured is not None else math.inf) <= target_ms,
        f"rate>={MIN_RATE_SHARE:.0%}": result.rps >= MIN_RATE_SHARE * result.target_rate,
    }
    result.passed = all(result.checks.values())


def judge_scenario(result: Result, p95_target: float) -> None:
    """A fixed-rate scenario: judged on p95."""
    _judge(result, "p95", p95_target)


def judge_step(result: Result) -> None:
    """A saturation step: judged on p99."""
    _judge(result, "p99", RAMP_P99_MS)


def brief(r: Result) -> str:
    verdict = "PASS" if r.passed else "FAIL"
    return (
        f"{verdict}: {r.rps} req/s, {r.requests} req, {r.failures} failed, "
        f"p50/p95/p99 {r.p50_ms}/{r.p95_ms}/{r.p99_ms} ms, cached {r.cached_share}"
        + (f", error: {r.error}" if r.error else "")
        + (" [client CPU-bound]" if r.client_cpu_warning else "")
    )


def run_scenarios(url: str, rate: float, duration: int, out_dir: Path, seed: int) -> list[Result]:
    results = []
    for i, (name, (user_class, p95_target)) in enumerate(SCENARIOS.items(), 1):
        log(f"scenario {i}/{len(SCENARIOS)} {name}: {rate:g} req/s for {duration} s ({user_class}) ...")
        result = run_locust(name, user_class, url, rate, duration, out_dir, seed + i)
        judge_scenario(result, p95_target)
        log(f"  {brief(result)}")
        results.append(result)
    return results


def saturation_ramp(url: str, steps: list[int], step_s: int, out_dir: Path, seed: int) -> dict:
    """Step the mixed scenario's rate up until a step fails; the best held step is the capacity."""
    held, results = None, []
    for i, rate in enumerate(steps, 1):
        log(f"saturation step {i}/{len(steps)}: mixed at {rate} req/s for {step_s} s ...")
        # a seed per step, so the step's "new" bodies are really new to the cache
        result = run_locust(f"ramp_{rate}", "MixedUser", url, rate, step_s, out_dir, seed + 100 + i)
        judge_step(result)
        log(f"  {brief(result)}")
        results.append(result)
        if not result.passed:
            break
        held = rate
    return {
        "criteria": f"zero failures, p99 <= {RAMP_P99_MS:g} ms, achieved >= {MIN_RATE_SHARE:.0%} of target",
        "step_s": step_s,
        "max_held_rate": held,
        "steps": [asdict(r) for r in results],
    }


# --------------------------------------------------------------------------- reports


def scenario_table(results: list[Result]) -> list[str]:
    lines = [
        "| scenario | target req/s | req/s | requests | failures | p50 ms | p95 ms | p99 ms | p95 target"
        " | cached | result |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        target = next(k for k in r.checks if k.startswith("p95")).split("<=")[1]
        lines.append(
            f"| {r.name} | {r.target_rate:g} | {r.rps} | {r.requests} | {r.failures} | {r.p50_ms} | "
            f"{r.p95_ms} | {r.p99_ms} | {target} | {r.cached_share} | {'PASS' if r.passed else 'FAIL'} |"
        )
    return lines


def ramp_table(ramp: dict) -> list[str]:
    lines = ["| target req/s | achieved | failures | p99 ms | held |", "|---|---|---|---|---|"]
    for s in ramp["steps"]:
        lines.append(
            f"| {s['target_rate']:g} | {s['rps']} | {s['failures']} | {s['p99_ms']} | "
            f"{'yes' if s['passed'] else 'no'} |"
        )
    return lines


def held_text(ramp: dict) -> str:
    if ramp["max_held_rate"]:
        return f"{ramp['max_held_rate']} req/s"
    first = ramp["steps"][0]["target_rate"] if ramp["steps"] else None
    return f"none (below {first:g} req/s)" if first else "not run"


def summary_markdown(summary: dict, results: list[Result]) -> str:
    ramp, mem = summary["saturation"], summary["memory_mb"]
    notes = [f"- {r.name}: {r.error}" for r in results if r.error]
    notes += [
        f"- {r.name}: Locust reported client CPU above 90 % (latencies include client delay)"
        for r in results
        if r.client_cpu_warning
    ]
    lines = [
        f"# Load test {summary['started']}",
        "",
        f"Service: {summary['service']} at {summary['host']}; {summary['duration_s']} s per scenario.",
        "",
        *scenario_table(results),
        "",
        f"**Fixed-rate targets: {'PASS' if summary['passed'] else 'FAIL'}**",
        "",
        f"## Saturation (mixed): max held {held_text(ramp)}",
        "",
        f"Criteria: {ramp['criteria']}; {ramp['step_s']} s per step.",
        "",
        *ramp_table(ramp),
        "",
        "## Memory (service process tree)",
        "",
        f"- at rest (ready, before load): {memory_text(mem['at_rest'])}",
        f"- after the run: {memory_text(mem['after'])}",
        *baseline_lines(summary),
    ]
    return "\n".join(lines + (["", "## Notes", "", *notes] if notes else [])) + "\n"


def _ratio(ramp: dict, baseline: dict | None) -> float | None:
    if not baseline or not baseline["max_held_rate"] or not ramp["max_held_rate"]:
        return None
    return ramp["max_held_rate"] / baseline["max_held_rate"]


def baseline_lines(summary: dict) -> list[str]:
    baseline = summary.get("baseline")
    if not baseline:
        return []
    ratio = summary["ratio_to_baseline"]
    return [
        "",
        "## Baseline: plain single-process server (no hop, no batching, no cache)",
        "",
        f"Max held (same ramp, same criteria): {held_text(baseline)}; service / baseline = "
        f"{f'{ratio:.2f}' if ratio else 'n/a'}",
        "",
        *ramp_table(baseline),
    ]


def memory_text(mem: dict | None) -> str:
    if not mem:
        return "n/a (service process not found)"
    return f"RSS {mem['rss_mb']:.0f} MB, PSS {mem['pss_mb']:.0f} MB over {mem['processes']} processes"


def write_reports(out_dir: Path, summary: dict, results: list[Result]) -> str:
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    markdown = summary_markdown(summary, results)
    (out_dir / "summary.md").write_text(markdown)
    latest = REPORTS / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    for name in ("summary.json", "summary.md"):
        shutil.copy2(out_dir / name, latest / name)
    return markdown


# --------------------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.run", description=__doc__.split("\n")[0])
    parser.add_argument("--host", help="test this running service (e.g. http://127.0.0.1:3000) instead of building one")
    parser.add_argument("--duration", type=int, help="seconds per scenario (default 60, --quick 15)")
    parser.add_argument("--rate", type=float, default=50.0, help="total req/s of the fixed-rate scenarios")
    parser.add_argument("--quick", action="store_true", help="short run: 15 s scenarios, 10 s ramp steps")
    parser.add_argument("--step-duration", type=int, help="seconds per saturation step (default 30, --quick 10)")
    parser.add_argument("--steps", default=",".join(map(str, RAMP_STEPS)), help="saturation target rates, req/s")
    parser.add_argument("--no-ramp", action="store_true", help="skip the saturation ramp")
    parser.add_argument("--keep-bento", action="store_true", help="keep the Bento built for the run in the store")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated request bodies")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also ramp the plain single-process server (no hop, batching or cache) for a ratio",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (15 if args.quick else 60)
    args.step_duration = args.step_duration or (10 if args.quick else 30)
    return args


def run_all(args: argparse.Namespace, url: str, pid: int | None, out_dir: Path) -> tuple[list[Result], dict, dict]:
    warm_up(url)
    at_rest = memory_mb(pid)
    log(f"service memory at rest: {memory_text(at_rest)}")
    results = run_scenarios(url, args.rate, args.duration, out_dir, args.seed)
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    ramp = (
        saturation_ramp(url, steps, args.step_duration, out_dir, args.seed)
        if not args.no_ramp
        else {"criteria": "skipped (--no-ramp)", "step_s": 0, "max_held_rate": None, "steps": []}
    )
    memory = {"at_rest": at_rest, "after": memory_mb(pid)}
    log(f"service memory after the run: {memory_text(memory['after'])}")
    return results, ramp, memory


def delete_bento(tag: str) -> None:
    """Each build stores a new Bento (models included); drop ours so repeated runs don't fill the disk."""
    subprocess.run([str(BENTOML), "delete", "-y", tag], env=quiet_env(), capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. from CI) must unwind through the finally blocks that stop the service.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.strftime("%Y%m%d-%H%M%S")
    out_dir = REPORTS / started
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"reports: {out_dir.relative_to(ROOT)}")
    tag = None
    try:
        if args.host:
            url = args.host.rstrip("/")
            wait_ready(url, None, timeout=10)
            pid = external_service_pid(url)
            results, ramp, memory = run_all(args, url, pid, out_dir)
        else:
            log("building the Bento (bentoml build) ...")
            tag = build_bento()
            with served_bento(tag, out_dir) as (url, pid):
                results, ramp, memory = run_all(args, url, pid, out_dir)
    except RuntimeError as exc:
        log(f"ERROR: {exc}")
        with contextlib.suppress(OSError):
            out_dir.rmdir()  # only succeeds when empty; a service.log is kept for diagnosis
        return 2
    finally:
        if tag and not args.keep_bento:
            delete_bento(tag)
    baseline = baseline_ramp(args, out_dir) if args.baseline and not args.no_ramp else None
    summary = {
        "started": started,
        "host": url,
        "service": f"bento {tag}" if tag else "external (--host)",
        "rate": args.rate,
        "duration_s": args.duration,
        "quick": args.quick,
        "seed": args.seed,
        "passed": all(r.passed for r in results),
        "scenarios": {r.name: asdict(r) for r in results},
        "saturation": ramp,
        "memory_mb": memory,
        "baseline": baseline,
        "ratio_to_baseline": _ratio(ramp, baseline),
    }
    print("\n" + write_reports(out_dir, summary, results), flush=True)
    log(f"reports written to {out_dir.relative_to(ROOT)} (summary also in loadtests/reports/latest/)")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
