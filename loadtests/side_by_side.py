"""The service, the same models in one plain process and a naive server, measured side by side with wrk.

    python -m loadtests.side_by_side [--duration 10] [--rounds 2] [--targets service,in-process,naive]
                                     [--json docs/side-by-side.json]

Targets: ``service`` (``bentoml serve service:ArmorService``, default settings), ``in-process``
(``loadtests.plain_server``: the same models and routes in plain uvicorn with 2 workers and the
service's HTTP protocol class, no runner hop, no caches; ``in-process:PLAIN_SERVER_HTTP=stock``
with uvicorn's own) and ``naive`` (``loadtests.naive_server``: FastAPI + one scikit-learn random forest
on the same reference data, plain uvicorn with 2 workers: the server a user might write instead).
Cells (wrk, 2 threads, on the same two cores as the servers, so every figure
includes the client's share): a new material per request at 1, 16 and 64 connections; one
repeated material at 64; 70 % repeats at 64.

Every target is started (and warmed up) first and stays up; then each cell is run on every target
in turn, back to back, ``--rounds`` times, alternating which goes first. The machine is shared and
noisy (the same server and cell moved 1,881–3,197 req/s between 8 s runs minutes apart), so a ratio
is only read between figures measured seconds apart. Two ratios are printed per cell: of the best
round of each target (each one's capacity, what the table shows) and the median of the rounds'
own ratios (each round's targets measured back to back). RSS is the sum over each target's process
tree at rest, after warm-up. ``make bench-compare`` runs all three targets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "loadtests"
ROUTE = "/api/v1/predict/mechanical"
CELLS = (  # name, wrk script, connections
    ("new material, 1 connection", "wrk_new_material.lua", 1),
    ("new material, 16 connections", "wrk_new_material.lua", 16),
    ("new material, 64 connections", "wrk_new_material.lua", 64),
    ("one repeated material, 64", "wrk_post.lua", 64),
    ("70 % repeats, 64", "wrk_mixed.lua", 64),
)
UVICORN_APPS = {  # targets served by plain uvicorn with 2 workers: the app factory of each
    "in-process": "loadtests.plain_server:build_app",
    "naive": "loadtests.naive_server:build_app",
}


@dataclass
class Cell:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_ms_per_request: float = float("nan")  # CPU time of the target's processes (not wrk's) / requests
    # the same per role of the target's processes (``role``: API workers, runner, log writer, the rest)
    cpu_ms_by_role: dict[str, float] = field(default_factory=dict)


Ratios = dict[str, dict[str, float]]  # "service / naive" -> cell name -> ratio of req/s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _variant(target: str) -> tuple[str, dict[str, str]]:
    """``service:NAME=value;NAME=value`` is the service with those environment variables set;
    ``service@/path`` the service of another checkout (e.g. a git worktree of another commit)."""
    kind, _, assignments = target.partition(":")
    kind, _, root = kind.partition("@")
    env = dict(a.split("=", 1) for a in assignments.split(";") if a)
    return kind, env | ({"PYTHONPATH": root} if root else {})


def _root(target: str) -> Path:
    return Path(target.split(":")[0].partition("@")[2] or ROOT)


def _command(target: str, port: int) -> list[str]:
    if _variant(target)[0] == "service":
        bentoml = str(Path(sys.executable).parent / "bentoml")
        return [bentoml, "serve", "service:ArmorService", "--host", "127.0.0.1", "--port", str(port)]
    if _variant(target)[0] == "in-process":  # its own entry point: the service's HTTP protocol class
        return [sys.executable, "-m", "loadtests.plain_server", "--workers", "2", "--port", str(port)]
    uvicorn = [sys.executable, "-m", "uvicorn", UVICORN_APPS[_variant(target)[0]], "--factory"]
    return [*uvicorn, "--workers", "2", "--port", str(port), "--log-level", "warning", "--no-access-log"]


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def serving(target: str, env: dict[str, str]) -> Iterator[tuple[int, psutil.Process]]:
    port = free_port()
    process = subprocess.Popen(
        _command(target, port),
        cwd=_root(target),
        env=env | _variant(target)[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while not _ready(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{target} did not become ready")
            time.sleep(0.5)
        yield port, psutil.Process(process.pid)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(20)
        if process.poll() is None:
            process.kill()


def role(process: psutil.Process) -> str:
    """What a process of a target is: ``api`` (a BentoML API worker), ``runner`` (the model
    service's worker), ``writer`` (the prediction log's writer process) or ``main`` (the process
    manager, or a plain server's processes)."""
    command = " ".join(process.cmdline())
    if "predlog.process" in command:
        return "writer"
    if "_bentoml_impl.worker.service" in command:
        return "runner" if "--service-name armor_models" in command else "api"
    return "main"


def cpu_by_role(root: psutil.Process) -> dict[str, float]:
    """User + system CPU seconds so far of the process tree, per ``role`` (what the target itself
    spent, whatever else the shared machine is doing)."""
    spent: dict[str, float] = {}
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            name = role(process)
            spent[name] = spent.get(name, 0.0) + times.user + times.system
    return spent


def rss_mb(root: psutil.Process) -> float:
    processes = [root, *root.children(recursive=True)]
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total / 1e6


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        return float("nan")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
    return float(match.group(1)) * scale


def wrk(port: int, script: str, connections: int, duration_s: int, offset: int = 0, route: str = ROUTE) -> Cell:
    """``offset`` shifts the materials of the new-material scripts, so no run repeats (and no cache
    answers) another run's materials; ``route``: the path posted to."""
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "-s", str(HERE / script), "--latency"]
    text = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{route}", "--", str(offset)], capture_output=True, text=True, check=True
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    failed = int(errors.group(1)) if errors else 0
    failed += sum(int(g) for g in socket_errors.groups()) if socket_errors else 0
    return Cell(rate, _latency_ms(text, "50"), _latency_ms(text, "99"), failed, requests)


OFFSET_STEP = 40_000  # materials one cell may use per thread (4,000 req/s for 10 s); the scripts space
# their threads 1,000,003 apart, so up to 24 cells never meet


def warmed_up(port: int, root: psutil.Process) -> float:
    """Connections and first model calls made; the RSS at rest afterwards, MB."""
    wrk(port, "wrk_post.lua", 4, 2)
    time.sleep(2)
    return rss_mb(root)


def measure_cell(port: int, root: psutil.Process, cell: tuple[str, str, int], duration_s: int, offset: int) -> Cell:
    _, script, connections = cell
    spent = cpu_by_role(root)
    measured = wrk(port, script, connections, duration_s, offset)
    after, requests = cpu_by_role(root), max(measured.requests, 1)
    measured.cpu_ms_by_role = {name: (after[name] - spent.get(name, 0.0)) * 1e3 / requests for name in sorted(after)}
    measured.cpu_ms_per_request = sum(measured.cpu_ms_by_role.values())
    return measured


def run(
    targets: list[str], env: dict[str, str], duration_s: int, rounds: int, cells: tuple[tuple[str, str, int], ...]
) -> tuple[dict[str, list[dict[str, Cell]]], dict[str, float]]:
    """Each target's cells, round by round, and its RSS at rest (see the module doc)."""
    runs: dict[str, list[dict[str, Cell]]] = {t: [{} for _ in range(rounds)] for t in targets}
    with contextlib.ExitStack() as stack:
        served = {t: stack.enter_context(serving(t, env)) for t in targets}
        memory = {t: warmed_up(*served[t]) for t in targets}
        for index, cell in enumerate(cells):
            for round_no in range(rounds):
                order = targets if (index + round_no) % 2 == 0 else targets[::-1]
                offset = (index * rounds + round_no + 1) * OFFSET_STEP
                for target in order:
                    print(f"{cell[0]}, round {round_no + 1}/{rounds}: {target} ...", flush=True)
                    runs[target][round_no][cell[0]] = measure_cell(*served[target], cell, duration_s, offset)
    return runs, memory


def best(rounds: list[dict[str, Cell]]) -> dict[str, Cell]:
    return {name: max((r[name] for r in rounds), key=lambda c: c.requests_per_s) for name in rounds[0]}


def service_ratios(results: dict[str, dict[str, Cell]], cells: tuple[tuple[str, str, int], ...]) -> Ratios:
    """req/s of the first target (the service) over each other target's, per cell."""
    reference, *others = results
    return {
        f"{reference} / {other}": {name: _ratio(results[reference][name], results[other][name]) for name, _, _ in cells}
        for other in others
    }


def paired_ratios(runs: dict[str, list[dict[str, Cell]]], cells: tuple[tuple[str, str, int], ...]) -> Ratios:
    """Per cell, the median over the rounds of the first target's req/s over each other target's in
    the same round (measured back to back)."""
    reference, *others = runs

    def median(other: str, name: str) -> float:
        rounds = zip(runs[reference], runs[other], strict=True)
        return statistics.median(_ratio(mine[name], theirs[name]) for mine, theirs in rounds)

    return {f"{reference} / {other}": {name: median(other, name) for name, _, _ in cells} for other in others}


def _ratio(mine: Cell, theirs: Cell) -> float:
    return mine.requests_per_s / theirs.requests_per_s if theirs.requests_per_s else float("nan")


def print_table(
    runs: dict[str, list[dict[str, Cell]]],
    results: dict[str, dict[str, Cell]],
    ratios: Ratios,
    paired: Ratios,
    cells: tuple[tuple[str, str, int], ...],
) -> None:
    """Per cell, a line per target (its best round from ``results``, then every round's req/s in the order run) and
    a line per ratio (of the best rounds; in brackets the median of the rounds' own ratios): a
    block per cell, so long variant names stay readable."""
    width = max(len(name) for name in [*runs, *ratios])
    for name, _, _ in cells:
        print(f"\n{name}")
        for target, rounds in runs.items():
            top = results[target][name]
            each = " / ".join(f"{r[name].requests_per_s:.0f}" for r in rounds)
            split = ", ".join(f"{part} {ms:.3f}" for part, ms in _median_split(rounds, name).items())
            print(
                f"  {target:{width}s}  best {top.requests_per_s:6.0f} req/s, p50 {top.p50_ms:6.2f} ms, "
                f"cpu {top.cpu_ms_per_request:4.2f} ms a request; rounds {each}\n"
                f"  {'':{width}s}  cpu ms a request, median of the rounds: {split}"
            )
        for ratio in ratios:
            print(f"  {ratio:{width}s}  {ratios[ratio][name]:.2f} (median of the rounds {paired[ratio][name]:.2f})")


def _median_split(rounds: list[dict[str, Cell]], cell: str) -> dict[str, float]:
    """Per process role, the median over the rounds of its CPU ms a request in ``cell``."""
    names = sorted({name for r in rounds for name in r[cell].cpu_ms_by_role})
    return {name: statistics.median(r[cell].cpu_ms_by_role.get(name, 0.0) for r in rounds) for name in names}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk cell")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each cell on each target")
    parser.add_argument(
        "--targets",
        default="service,in-process",
        help="comma-separated: service, in-process, naive, or service:NAME=value;NAME=value (a variant's "
        "environment); ratios are of the first to each other one",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--cells", default="", help="only the cells whose name contains one of these (comma-separated)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENTOML_DO_NOT_TRACK": "True"}
    targets = args.targets.split(",")
    unknown = [t for t in targets if _variant(t)[0] not in ("service", *UVICORN_APPS)]
    if unknown:
        parser.error(f"unknown target(s) {unknown}: service, in-process or naive")
    wanted = [w for w in args.cells.split(",") if w]
    chosen = tuple(c for c in CELLS if not wanted or any(w in c[0] for w in wanted))
    runs, memory = run(targets, env, args.duration, args.rounds, chosen)
    results = {t: best(runs[t]) for t in targets}
    ratios, paired = service_ratios(results, chosen), paired_ratios(runs, chosen)
    print_table(runs, results, ratios, paired, chosen)
    print("RSS at rest, MB: " + ", ".join(f"{t} {memory[t]:.0f}" for t in targets))
    print("errors: " + ", ".join(f"{t} {sum(c.errors for r in runs[t] for c in r.values())}" for t in targets))
    if args.json:
        payload = {
            "command": " ".join(sys.argv),
            "duration_s": args.duration,
            "rounds": {t: [{n: asdict(c) for n, c in r.items()} for r in runs[t]] for t in targets},
            "best": {t: {n: asdict(c) for n, c in results[t].items()} for t in targets},
            "rss_mb": memory,
            "requests_per_s_ratios": ratios,
            "median_paired_ratios": paired,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
