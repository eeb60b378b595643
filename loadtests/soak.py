"""Memory over a soak: does every process and the shared SQLite file level off under steady load?

    python -m loadtests.soak --minutes 6 [--rate 200] [--new-fraction 0.3] [--interval 5]

Starts ``bentoml serve service:ArmorService`` on a free port with a private ``BENTOML_HOME`` (a
temporary directory whose ``models`` links to the real store), so no other ``bentoml serve`` on the
machine cleans this one's metrics directory or writes into its SQLite file, and the file starts
empty. Cache settings come from the environment as for the service (``RESPONSE_CACHE_SIZE=200
python -m loadtests.soak ...`` runs the service with that cap and states the bounds for it).

Load: an open-loop client at a fixed rate (``--rate`` requests/s, at most ``--max-in-flight`` on
the wire; a request due while that many are in flight, or that the client itself could not send
within LATE_S of its time, is skipped and counted, so the run lasts ``--minutes`` whatever the rate
achieved). Each request is mechanical or, with probability ``--ballistic-fraction``, ballistic; a
new material (realistic, from loadtests.materials, seeded by ``--offset`` and the request number
so no two runs share one) with probability ``--new-fraction``, else one of 100 fixed materials per
family; 10 % of the new ones ask for feature importance. New materials make every cache layer
grow until its caps hold.

Sampled every ``--interval`` seconds, from ``--rest`` seconds before the load until it stops: the
RSS of every process of the tree, labelled by role from its command line (``arbiter``, ``api#N``,
``runner#N``, other children by name; a restarted worker keeps its label and is reported), the
SQLite file and its ``-wal`` (bytes on disk), and the entries and counted bytes of each cache
layer from ``GET /api/v1/performance`` (summed over the processes holding that layer).

Writes ``loadtests/reports/soak-<timestamp>/``: ``samples.csv``, ``soak.png`` (RSS per process,
file size, entries per layer against their caps) and ``summary.json``; prints per process the
RSS at rest, at the end and the maximum, a verdict per series, and the stated bound of each layer.

Verdict rule: a straight line is fitted (least squares) to the samples of the last third of the
load period; the series *levelled off* when the rise that line predicts over that third is at most
2 % of the series' mean over it (at least 1 MB for byte series, 1 entry for counts); *still rising*
when it is more, *falling* when it falls by more. The slope is printed per hour, since a series
that passes over minutes can still add up over days.

Bound of each layer (stated, not enforced here): per process ``min(entries cap x mean bytes per
entry, byte cap)``, where the mean is the layer's counted bytes (key + value + 64 bytes of
bookkeeping; caching/lru.py) over its entries at the end of the run, times the processes holding
the layer (response and feature: API workers; prediction: runner workers). Shared SQLite layer:
``min(10 x response entries cap x mean stored bytes, 4 x response byte cap)`` of stored key +
value bytes; the file adds SQLite's pages, index and free list (the ratio is printed). The
counted bytes leave out CPython's objects, so the RSS growth per entry held is printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from caching.shared import MACHINE_CACHE_FILE
from loadtests.materials import material_body
from settings import BYTES_PER_MB, Settings, load_settings
from tests.support import BentoServer

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "loadtests" / "reports"
ROLE_OF_SERVICE = {"ceramic_armor": "api", "armor_models": "runner"}
HOT_MATERIALS = 100  # per family: the repeated part of the load
IMPORTANCE_PROBABILITY = 0.1
LEVEL_TOLERANCE = 0.02  # of the series' mean over the last third
LAYERS = ("response", "feature", "prediction")
LATE_S = 1.0  # a request the client could not send within this of its time is skipped, not sent late


# --- the process tree ---------------------------------------------------------------------------


def role(process: psutil.Process, root_pid: int) -> str:
    """``arbiter`` for bentoml serve itself, ``api#N`` / ``runner#N`` for its workers."""
    if process.pid == root_pid:
        return "arbiter"
    cmdline = process.cmdline()

    def arg(flag: str) -> str | None:
        return cmdline[cmdline.index(flag) + 1] if flag in cmdline[:-1] else None

    service = arg("--service-name")
    if service:
        return f"{ROLE_OF_SERVICE.get(service, service)}#{arg('--worker-id')}"
    return f"other:{process.name()}"


def rss_by_role(root: psutil.Process) -> dict[str, tuple[int, float]]:
    """{role: (pid, RSS MB)} of the whole tree now."""
    out = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            with process.oneshot():
                out[role(process, root.pid)] = (process.pid, process.memory_info().rss / BYTES_PER_MB)
        except psutil.Error:
            continue
    return out


def file_mb(path: Path | None) -> float:
    try:
        return path.stat().st_size / BYTES_PER_MB if path else float("nan")
    except FileNotFoundError:
        return 0.0


# --- the load -------------------------------------------------------------------------------------


@dataclass
class LoadStats:
    due: int = 0
    skipped: int = 0  # due while --max-in-flight were on the wire, or more than LATE_S late (client behind)
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)


class Load:
    """The fixed-rate mixed client (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, base_url: str):
        self.args, self.base_url = args, base_url
        self.stats = LoadStats()
        self.choices = random.Random(args.offset)
        self.hot = {
            family: [
                self._encode(material_body(random.Random(f"hot-{family}-{i}"), family == "ballistic"))
                for i in range(HOT_MATERIALS)
            ]
            for family in ("mechanical", "ballistic")
        }

    @staticmethod
    def _encode(body: dict[str, Any]) -> bytes:
        return json.dumps(body).encode()

    def request(self, number: int) -> tuple[str, bytes]:
        family = "ballistic" if self.choices.random() < self.args.ballistic_fraction else "mechanical"
        if self.choices.random() >= self.args.new_fraction:
            return family, self.choices.choice(self.hot[family])
        rng = random.Random(f"soak-{self.args.offset}-{number}")
        return family, self._encode(material_body(rng, family == "ballistic", IMPORTANCE_PROBABILITY))

    async def _send(self, client: httpx.AsyncClient, family: str, body: bytes) -> None:
        started = time.perf_counter()
        try:
            reply = await client.post(
                f"{self.base_url}/api/v1/predict/{family}", content=body, headers={"content-type": "application/json"}
            )
            self.stats.statuses[str(reply.status_code)] += 1
            self.stats.latencies_ms.append((time.perf_counter() - started) * 1e3)
        except httpx.HTTPError as exc:
            self.stats.statuses[type(exc).__name__] += 1

    async def run(self, client: httpx.AsyncClient, seconds: float) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        number = 0
        while time.monotonic() < started + seconds:
            due = started + number / self.args.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            number += 1
            self.stats.due += 1
            if len(in_flight) >= self.args.max_in_flight or time.monotonic() - due > LATE_S:
                self.stats.skipped += 1
                continue
            family, body = self.request(number)
            task = asyncio.create_task(self._send(client, family, body))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight)


# --- sampling -------------------------------------------------------------------------------------


async def cache_figures(client: httpx.AsyncClient, base_url: str) -> dict[str, float]:
    """Entries and counted MB per layer (and of the shared layer) from /api/v1/performance."""
    try:
        reply = await client.get(f"{base_url}/api/v1/performance", timeout=10)
        body = reply.json()
    except (httpx.HTTPError, ValueError):
        return {}
    out = {}
    for layer in LAYERS:
        figures = body.get(f"{layer}_cache", {})
        out[f"{layer}_entries"] = figures.get("cache_size", math.nan)
        out[f"{layer}_mb"] = figures.get("memory_usage_mb", math.nan)
        out[f"{layer}_evictions"] = figures.get("evictions", math.nan)
    shared = body.get("response_cache", {}).get("shared", {})
    out["shared_entries"] = shared.get("entries", math.nan)
    out["shared_mb"] = shared.get("memory_usage_mb", math.nan)
    out["model_cache_mb"] = sum(row.get("memory_mb", 0.0) for row in body.get("model_cache", []))
    return out


class Sampler:
    def __init__(self, root: psutil.Process, sqlite_path: Path | None, base_url: str):
        self.root, self.sqlite_path, self.base_url = root, sqlite_path, base_url
        self.rows: list[dict[str, float]] = []
        self.pids: dict[str, set[int]] = {}
        self.started = time.monotonic()

    async def sample(self, client: httpx.AsyncClient, stats: LoadStats) -> None:
        row: dict[str, float] = {"t_min": (time.monotonic() - self.started) / 60}
        for name, (pid, rss) in rss_by_role(self.root).items():
            row[f"rss_{name}_mb"] = rss
            self.pids.setdefault(name, set()).add(pid)
        wal = self.sqlite_path.with_name(self.sqlite_path.name + "-wal") if self.sqlite_path else None
        row["sqlite_db_mb"], row["sqlite_wal_mb"] = file_mb(self.sqlite_path), file_mb(wal)
        row["sqlite_total_mb"] = row["sqlite_db_mb"] + row["sqlite_wal_mb"]
        row |= await cache_figures(client, self.base_url)
        row["requests_due"], row["requests_ok"] = stats.due, stats.statuses["200"]
        self.rows.append(row)

    async def every(self, client: httpx.AsyncClient, stats: LoadStats, interval_s: float) -> None:
        while True:
            await self.sample(client, stats)
            await asyncio.sleep(interval_s)


async def soak(args: argparse.Namespace, server: BentoServer, sqlite_path: Path | None) -> tuple[Sampler, Load, float]:
    """Samples at rest, then under load; the load's start in minutes since the first sample."""
    assert server.process is not None
    sampler = Sampler(psutil.Process(server.process.pid), sqlite_path, server.url)
    load = Load(args, server.url)
    limits = httpx.Limits(max_connections=args.max_in_flight, max_keepalive_connections=args.max_in_flight)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        sampling = asyncio.create_task(sampler.every(client, load.stats, args.interval))
        await asyncio.sleep(args.rest)
        load_start = (time.monotonic() - sampler.started) / 60
        await load.run(client, args.minutes * 60)
        sampling.cancel()
        await sampler.sample(client, load.stats)
    return sampler, load, load_start


# --- verdicts and bounds --------------------------------------------------------------------------


@dataclass
class Verdict:
    series: str
    start: float
    end: float
    maximum: float
    slope_per_h: float
    verdict: str


def verdict(series: str, rows: list[dict[str, float]], load_start: float, floor: float = 1.0) -> Verdict | None:
    """The rule of the module docstring, over the samples taken under load."""
    under_load = [r for r in rows if r["t_min"] >= load_start and not math.isnan(r.get(series, math.nan))]
    points = [(r["t_min"], r[series]) for r in under_load]
    if len(points) < 3:
        return None
    times, values = np.array(points).T
    last = times >= times[0] + (times[-1] - times[0]) * 2 / 3
    slope = float(np.polyfit(times[last], values[last], 1)[0]) if last.sum() >= 2 else 0.0
    rise = slope * (times[last][-1] - times[last][0])
    tolerance = max(LEVEL_TOLERANCE * float(values[last].mean()), floor)
    label = "levelled off" if abs(rise) <= tolerance else "still rising" if rise > 0 else "falling"
    at_rest = [r[series] for r in rows if r["t_min"] < load_start and not math.isnan(r.get(series, math.nan))]
    start = at_rest[-1] if at_rest else float(values[0])
    return Verdict(series, start, float(values[-1]), float(values.max()), slope * 60, label)


@dataclass
class Bound:
    layer: str
    processes: int
    entries_cap: int  # per process
    byte_cap_mb: float  # per process
    mean_bytes_per_entry: float  # counted, at the end of the run
    bound_mb: float  # all processes of the layer

    def line(self) -> str:
        per_process = self.bound_mb / self.processes
        mean = f"{self.mean_bytes_per_entry:,.0f} B" if not math.isnan(self.mean_bytes_per_entry) else "n/a"
        return (
            f"{self.layer:10s} {self.processes} x min({self.entries_cap:,} entries x {mean}, "
            f"{self.byte_cap_mb:g} MB) = {self.processes} x {per_process:.1f} MB = {self.bound_mb:.1f} MB"
        )


def _mean_bytes(last: dict[str, float], name: str) -> float:
    entries = last.get(f"{name}_entries", math.nan)
    return last.get(f"{name}_mb", math.nan) * BYTES_PER_MB / entries if entries and entries > 0 else math.nan


def bounds(settings: Settings, last: dict[str, float]) -> list[Bound]:
    out = []
    for layer in LAYERS:
        config = getattr(settings, f"{layer}_cache")
        if not config.enabled:
            continue
        processes = settings.serving.prediction_workers if layer == "prediction" else settings.serving.api_workers
        mean = _mean_bytes(last, layer)
        per_process = min(config.entries * mean, config.max_bytes) if not math.isnan(mean) else config.max_bytes
        out.append(Bound(layer, processes, config.entries, config.max_mb, mean, processes * per_process / 1e6))
    shared = settings.shared_cache
    if shared.machine_dir is not None and settings.response_cache.enabled:
        mean = _mean_bytes(last, "shared")
        stored = min(shared.entries * mean, shared.max_bytes) if not math.isnan(mean) else shared.max_bytes
        out.append(Bound("shared", 1, shared.entries, shared.max_bytes / 1e6, mean, stored / 1e6))
    return out


def rss_per_entry_kb(verdicts: dict[str, Verdict], last: dict[str, float], settings: Settings) -> dict[str, float]:
    """RSS growth (end - at rest) per cache entry held, per role: CPython's real cost of an entry plus
    whatever else grew (allocator arenas, first calls), so an upper estimate."""
    out = {}
    for kind, layers, workers in (
        ("api", ("response", "feature"), settings.serving.api_workers),
        ("runner", ("prediction",), settings.serving.prediction_workers),
    ):
        growth = [v.end - v.start for name, v in verdicts.items() if name.startswith(f"rss_{kind}#")]
        held = sum(last.get(f"{layer}_entries", 0.0) for layer in layers) / workers
        if growth and held > 0:
            out[kind] = float(np.mean(growth)) * BYTES_PER_MB / held / 1e3
    return out


# --- the report -----------------------------------------------------------------------------------


def write_csv(rows: list[dict[str, float]], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot(
    rows: list[dict[str, float]],
    verdicts: dict[str, Verdict],
    layer_bounds: list[Bound],
    settings: Settings,
    window: tuple[float, float],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 1, figsize=(11, 12), sharex=True)
    times = [r["t_min"] for r in rows]

    def draw(axis: Any, series: str, label: str, **style: Any) -> None:
        values = [r.get(series, math.nan) for r in rows]
        tag = f" ({verdicts[series].verdict})" if series in verdicts else ""
        axis.plot(times, values, label=label + tag, **style)

    for series in sorted(s for s in verdicts if s.startswith("rss_")):
        draw(axes[0], series, series.removeprefix("rss_").removesuffix("_mb"))
    axes[0].set_ylabel("RSS, MB")
    axes[0].set_title("RSS of every process of bentoml serve")
    for series, label in (("sqlite_total_mb", "file + -wal"), ("sqlite_db_mb", "file"), ("sqlite_wal_mb", "-wal")):
        draw(axes[1], series, label)
    draw(axes[1], "shared_mb", "stored key + value bytes", linestyle=":")
    shared = next((b for b in layer_bounds if b.layer == "shared"), None)
    if shared is not None:
        axes[1].axhline(shared.bound_mb, color="grey", linestyle="--", label=f"stated bound {shared.bound_mb:.1f} MB")
    axes[1].set_ylabel("MB")
    axes[1].set_title("machine-shared SQLite file")
    for index, layer in enumerate((*LAYERS, "shared")):
        colour = f"C{index}"
        draw(axes[2], f"{layer}_entries", layer, color=colour)
        cap = next((b.entries_cap * b.processes for b in layer_bounds if b.layer == layer), None)
        if cap:
            axes[2].axhline(cap, color=colour, linestyle="--", linewidth=0.8, label=f"{layer} cap {cap:,}")
    axes[2].set_ylabel("entries (all processes)")
    axes[2].set_xlabel("minutes since ready")
    axes[2].set_title("cache entries per layer (GET /api/v1/performance)")
    for axis in axes:
        axis.axvspan(*window, color="0.93", zorder=0)
        axis.legend(fontsize=7, loc="upper left")
        axis.grid(alpha=0.3)
    figure.suptitle(f"soak ({caps_text(settings)}); shaded: under load", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def caps_text(settings: Settings) -> str:
    layers = ", ".join(
        f"{layer} {getattr(settings, f'{layer}_cache').entries:,}/{getattr(settings, f'{layer}_cache').max_mb:g} MB"
        for layer in LAYERS
    )
    return (
        f"entries/byte caps per process: {layers}; {settings.serving.api_workers} API, "
        f"{settings.serving.prediction_workers} runner workers"
    )


def print_report(
    sampler: Sampler,
    verdicts: dict[str, Verdict],
    layer_bounds: list[Bound],
    per_entry: dict[str, float],
    load: Load,
    budget_mb: float,
) -> None:
    stats = load.stats
    latencies = sorted(stats.latencies_ms) or [math.nan]
    print(
        f"\nload: {stats.due:,} requests due, {stats.skipped:,} skipped (in-flight cap or client behind), statuses "
        f"{dict(stats.statuses)}, p50 {latencies[len(latencies) // 2]:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)]:.1f} ms"
    )
    print(f"\n{'series':28s} {'at rest':>9s} {'end':>9s} {'max':>9s} {'slope/h':>9s}  verdict (last third)")
    for name, v in verdicts.items():
        restarts = len(sampler.pids.get(name.removeprefix("rss_").removesuffix("_mb"), ())) - 1
        note = f"  ({restarts} restart(s))" if restarts > 0 else ""
        print(f"{name:28s} {v.start:9.1f} {v.end:9.1f} {v.maximum:9.1f} {v.slope_per_h:+9.1f}  {v.verdict}{note}")
    print("\nstated bounds (counted bytes; mean per entry measured at the end):")
    for bound in layer_bounds:
        print("  " + bound.line())
    last = sampler.rows[-1]
    if last.get("shared_mb", 0) > 0:
        ratio = last["sqlite_total_mb"] / last["shared_mb"]
        print(f"  SQLite file + -wal / stored bytes at the end: {ratio:.2f}")
    held = last.get("model_cache_mb", 0.0)
    print(
        f"  model cache: {budget_mb:g} MB budget per runner worker (MODEL_CACHE_MAX_MB); held at the end {held:.1f} MB"
    )
    for kind, kb in per_entry.items():
        print(f"  {kind} workers: RSS growth per cache entry held {kb:.1f} kB (upper estimate)")


def private_home() -> Path:
    """A BENTOML_HOME of this run's own, its ``models`` a link to the real store."""
    source = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    home = Path(tempfile.mkdtemp(prefix="armor-soak-"))
    (home / "models").symlink_to((source / "models").resolve(), target_is_directory=True)
    return home


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=6.0, help="minutes of load")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--new-fraction", type=float, default=0.3, help="share of requests with a new material")
    parser.add_argument("--ballistic-fraction", type=float, default=0.4)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--rest", type=float, default=15.0, help="seconds sampled at rest before the load")
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--offset", type=int, default=int(time.time()), help="seeds the new materials")
    parser.add_argument("--out", type=Path, help="report directory (default loadtests/reports/soak-<timestamp>)")
    args = parser.parse_args()
    out = args.out or REPORTS / f"soak-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    home = private_home()
    settings = load_settings(prometheus_multiproc_dir=str(home / "prometheus_multiproc_dir"))
    machine_dir = settings.shared_cache.machine_dir
    sqlite_path = machine_dir / MACHINE_CACHE_FILE if machine_dir else None
    server = BentoServer({"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"})
    print(caps_text(settings), flush=True)
    try:
        server.start()
        print(f"ready on {server.url}; {args.rest:.0f} s at rest, then {args.minutes:g} min at {args.rate:g} req/s")
        sampler, load, load_start = asyncio.run(soak(args, server, sqlite_path))
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    rows = sampler.rows
    names = [k for k in dict.fromkeys(key for row in rows for key in row) if k.startswith("rss_")]
    names += ["sqlite_db_mb", "sqlite_wal_mb", "sqlite_total_mb", *(f"{x}_entries" for x in (*LAYERS, "shared"))]
    verdicts = {n: v for n in names if (v := verdict(n, rows, load_start)) is not None}
    layer_bounds = bounds(settings, rows[-1])
    per_entry = rss_per_entry_kb(verdicts, rows[-1], settings)
    print_report(sampler, verdicts, layer_bounds, per_entry, load, settings.models.cache_max_mb)
    write_csv(rows, out / "samples.csv")
    plot(rows, verdicts, layer_bounds, settings, (load_start, rows[-1]["t_min"]), out / "soak.png")
    summary = {
        "command": " ".join(["python -m loadtests.soak", *sys.argv[1:]]),
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "caps": caps_text(settings),
        "load": {"due": load.stats.due, "skipped": load.stats.skipped, "statuses": dict(load.stats.statuses)},
        "verdicts": {n: asdict(v) for n, v in verdicts.items()},
        "bounds": [asdict(b) for b in layer_bounds],
        "rss_growth_per_entry_kb": per_entry,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"\nwrote {out / 'samples.csv'}, {out / 'soak.png'}, {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
