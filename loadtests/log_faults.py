"""The prediction log's database failing during traffic (issue 29): PostgreSQL killed, or the disk of
the SQLite file full. No request may fail, the rows that could not be written are counted, and
writing resumes once the database is back.

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

    python -m loadtests.log_faults --sqlite-disk-full [--seconds 60]

The same with the default database, a SQLite file, on a disk that fills up: the file lives on a
tmpfs of its own (``--disk-mb``, mounted for the run: root only), filled to the last byte by a
filler file at one third and emptied again at two thirds; the writes fail with SQLite's "database
or disk is full" meanwhile.

    python -m loadtests.log_faults --cluster [--seconds 60]

The same behind the three-instance cluster: `deploy/cluster.sh up` with DATABASE_URL on the server
(CLUSTER_DIR and the ports from the environment, as for `make cluster-up`; a cluster already
running there is refused, since its instances would keep their own database), the traffic through
HAProxy, the service's counts summed over the three instances and the answers counted per
instance (X-Served-By); `deploy/cluster.sh down` at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx

from loadtests.cluster import CLUSTER_SH, Cluster
from loadtests.materials import RequestPool, material_body
from loadtests.redis_failover import instance_home
from tests.support import BentoServer, PostgresServer, require_postgres_bin_dir

PHASES = ("before", "database_down", "database_back")


class Service(Protocol):
    """Where the traffic goes (``url``) and whose counts are read (``instance_urls``)."""

    url: str
    instance_urls: list[str]

    def start(self) -> None: ...

    def stop(self) -> None: ...


class OneServe:
    """One `bentoml serve` (2 API workers) with its own BENTOML_HOME, a copy of the model store."""

    def __init__(self, database_url: str):
        self.home = instance_home(Path.home() / "bentoml")
        self.server = BentoServer({"BENTOML_HOME": self.home, "PREDICTION_LOG": "true", "DATABASE_URL": database_url})
        self.url = self.server.url
        self.instance_urls = [self.url]

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.home, ignore_errors=True)


class ThreeInstances:
    """deploy/cluster.sh's cluster with the log on the given database; traffic through HAProxy."""

    def __init__(self, database_url: str):
        self.directory = Path(os.environ.get("CLUSTER_DIR", "/tmp/armor-cluster"))
        self.env = {**os.environ, "CLUSTER_DIR": str(self.directory)}
        self.env |= {"PREDICTION_LOG": "true", "DATABASE_URL": database_url}
        self.url, self.instance_urls = "", list[str]()

    def start(self) -> None:
        if any(_alive(pid) for pid in self.directory.glob("*.pid")):
            raise SystemExit(f"a cluster is running in {self.directory}: `make cluster-down` first")
        subprocess.run(["bash", str(CLUSTER_SH), "up"], check=True, env=self.env)
        cluster = Cluster.load(self.directory)
        self.url, self.instance_urls = cluster.url, [cluster.instance_url(n) for n in (1, 2, 3)]

    def stop(self) -> None:
        subprocess.run(["bash", str(CLUSTER_SH), "down"], check=False, env=self.env)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (ValueError, OSError):
        return False
    return True


class Fault(Protocol):
    """The database the log writes to, and how it fails and comes back."""

    url: str  # the service's DATABASE_URL
    name: str

    def fail(self) -> None: ...

    def mend(self) -> None: ...

    def written_per_phase(self, bounds: dict[str, tuple[float, float]]) -> dict[str, int]: ...

    def close(self) -> None: ...


class PostgresKilled:
    """A PostgreSQL server of its own, killed (``pg_ctl -m immediate``) and started again."""

    name = "PostgreSQL killed"

    def __init__(self, root: str):
        self.server = PostgresServer(require_postgres_bin_dir(), root)
        self.server.start()
        self.url = self.server.url

    def fail(self) -> None:
        self.server.kill()

    def mend(self) -> None:
        self.server.start()

    def written_per_phase(self, bounds: dict[str, tuple[float, float]]) -> dict[str, int]:
        return asyncio.run(written_per_phase(self.url, bounds))

    def close(self) -> None:
        self.server.stop()


class SQLiteDiskFull:
    """A SQLite file on a tmpfs of ``disk_mb`` of its own, filled to the last byte and emptied."""

    name = "SQLite disk full"

    def __init__(self, root: str, disk_mb: int):
        self.disk = Path(root) / "disk"
        self.disk.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={disk_mb}m", "tmpfs", str(self.disk)], check=True)
        self.file, self.filler = self.disk / "log.sqlite3", self.disk / "filler"
        self.url = f"sqlite:///{self.file}"

    def fail(self) -> None:
        """Write the filler until the disk has no byte left."""
        descriptor = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            for size in (1 << 20, 1 << 12, 1):  # unbuffered: a short write leaves less than ``size``
                block = b"\0" * size
                with contextlib.suppress(OSError):
                    while os.write(descriptor, block) == size:
                        pass
        finally:
            os.close(descriptor)

    def mend(self) -> None:
        self.filler.unlink()

    def written_per_phase(self, bounds: dict[str, tuple[float, float]]) -> dict[str, int]:
        with sqlite3.connect(self.file) as db:
            return {
                p: int(db.execute("SELECT COUNT(*) FROM predictions WHERE ts >= ? AND ts < ?", (lo, hi)).fetchone()[0])
                for p, (lo, hi) in bounds.items()
            }

    def close(self) -> None:
        # lazily: the serve's workers (sessions of their own) may still be closing the file
        subprocess.run(["umount", "--lazy", str(self.disk)], check=False)


def log_figures(urls: list[str]) -> dict[str, Any]:
    """The service's counts (written, dropped by reason, last error), summed over the instances."""
    figures = [httpx.get(f"{url}/api/v1/performance", timeout=30).json()["prediction_log"] for url in urls]
    dropped: Counter[str] = Counter()
    for f in figures:
        dropped.update(f["dropped_total"])
    return {
        "written_total": sum(f["written_total"] for f in figures),
        "dropped_total": dict(dropped),
        "last_error": [f["last_error"] for f in figures] if len(figures) > 1 else figures[0]["last_error"],
    }


async def drive(url: str, seconds: float, clients: int, fault: Fault) -> dict[str, Any]:
    pool = RequestPool(lambda rng: material_body(rng), repeat_prob=0.7, max_size=500, seed=29)
    statuses: dict[str, Counter[int]] = {p: Counter() for p in PHASES}
    served_by: Counter[str] = Counter()
    edges = [time.time()]  # unix times: start, database failed, database back, end
    started = time.monotonic()

    def phase() -> str:
        elapsed = time.monotonic() - started
        return PHASES[min(2, int(3 * elapsed / seconds))]

    async def client(http: httpx.AsyncClient, rng: random.Random) -> None:
        while time.monotonic() - started < seconds:
            body, _ = pool.next(rng)
            current = phase()
            try:
                answer = await http.post(f"{url}/api/v1/predict/mechanical", json=body)
                status = answer.status_code
                served_by[answer.headers.get("x-served-by", "-")] += 1  # HAProxy's server name
            except httpx.HTTPError:
                status = 0  # no answer at all
            statuses[current][status] += 1

    async def faults() -> None:
        await asyncio.sleep(seconds / 3)
        await asyncio.to_thread(fault.fail)
        edges.append(time.time())
        await asyncio.sleep(seconds / 3)
        await asyncio.to_thread(fault.mend)
        edges.append(time.time())

    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(faults(), *(client(http, random.Random(i)) for i in range(clients)))
    edges.append(time.time() + 1.0)  # the last answers' rows
    bounds = {p: (edges[i], edges[i + 1]) for i, p in enumerate(PHASES)}
    return {"statuses": statuses, "served_by": served_by, "bounds": bounds}


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
    parser.add_argument("--cluster", action="store_true", help="the three-instance cluster behind HAProxy")
    parser.add_argument("--sqlite-disk-full", action="store_true", help="a SQLite file whose disk fills up")
    parser.add_argument("--disk-mb", type=int, default=256, help="with --sqlite-disk-full: the tmpfs's size")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="armor-log-faults-")
    fault: Fault = SQLiteDiskFull(root, args.disk_mb) if args.sqlite_disk_full else PostgresKilled(root)
    service: Service = ThreeInstances(fault.url) if args.cluster else OneServe(fault.url)
    try:
        service.start()
        traffic = asyncio.run(drive(service.url, args.seconds, args.clients, fault))
        time.sleep(3)  # the writers' next rounds (the back-off is at most 5 s)
        time.sleep(3)
        figures = log_figures(service.instance_urls)
        written = fault.written_per_phase(traffic["bounds"])
    finally:
        service.stop()
        fault.close()
        shutil.rmtree(root, ignore_errors=True)
    answered = sum(n for counts in traffic["statuses"].values() for s, n in counts.items() if s == 200)
    dropped = sum(figures["dropped_total"].values())
    result = {
        "seconds": args.seconds,
        "clients": args.clients,
        "target": "cluster (3 instances, HAProxy)" if args.cluster else "bentoml serve",
        "fault": fault.name,
        "answers_by_phase": {p: dict(c) for p, c in traffic["statuses"].items()},
        "answers_by_instance": dict(sorted(traffic["served_by"].items())) if args.cluster else None,
        "failed_requests": sum(n for c in traffic["statuses"].values() for s, n in c.items() if s != 200),
        "rows_written_by_phase": written,
        "service": figures,
        "answered_200": answered,
        "written_plus_dropped": figures["written_total"] + dropped,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
