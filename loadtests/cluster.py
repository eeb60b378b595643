"""Load test of the local three-instance cluster (deploy/cluster.sh) through HAProxy.

    make cluster-up && make cluster-test        # or: .venv/bin/python -m loadtests.cluster
    .venv/bin/python -m loadtests.cluster --only throughput,kill

Phases (all through HAProxy's port; instances are switched in and out with HAProxy's runtime API):

1. throughput: wrk with 1, 2 and 3 servers enabled, new materials (every request computed) and
   one repeated body (cached), plus CPU seconds per request of the instances (psutil, summed over
   each process tree), of HAProxy, Redis and the client, and Redis commands per request;
2. shared cache: a set of new materials sent with only i1 enabled, then the same set with only
   i2, then only i3; the share answered `"cached": true` is the shared hit rate. Done with
   CACHE_BACKEND=redis and again with the instances restarted as CACHE_BACKEND=memory;
3. kill: closed-loop traffic, instance i3's process group SIGKILLed, then restarted; failed
   client requests, HAProxy's retries/redispatches, and the time until i3 answers again;
4. redis restart: traffic while Redis is stopped and started again; failed requests;
4b. rolling: closed-loop traffic while each instance in turn is stopped with SIGTERM (it drains,
   serving/drain.py) and started again, as a rolling update does; failed requests (0 expected);
5. redis-benchmark against the cluster's Redis (GET/SET of the service's value size).

Prints a table and writes JSON (docs/cluster-results.json by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import resource
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import redis

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SH = REPO / "deploy" / "cluster.sh"
EXAMPLE = json.loads((REPO / "tests" / "testdata" / "example_request.json").read_text())
SERVERS = ("i1", "i2", "i3")
PREDICT = "/api/v1/predict/mechanical"

# wrk: a new material per request; the run offset keeps phases from repeating each other's bodies.
WRK_NEW_MATERIAL = """
local counter, offset = 0, 0
local threads = {}
function setup(thread) thread:set("id", #threads) table.insert(threads, thread) end
function init(args) offset = tonumber(args[1]) + id * 1000003 end
request = function()
  counter = counter + 1
  local n = counter + offset
  local body = string.format([[{"composition": {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1},
 "processing": {"sintering_temperature": %d, "pressure": 50, "grain_size": %.4f, "holding_time": 120,
                "heating_rate": 15, "atmosphere": "argon"},
 "microstructure": {"porosity": %.5f, "phase_distribution": "uniform", "interface_quality": "good",
                    "pore_size": 1.0, "connectivity": 0.1},
 "include_uncertainty": true, "include_feature_importance": false}]],
    1300 + (math.floor(n / 2981027) % 900), 1.0 + (math.floor(n / 2990) % 997) / 10.0, 0.001 + (n % 2990) / 10000.0)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


def material(i: int) -> dict:
    """A distinct valid material per i (sintering temperature x porosity grid)."""
    return {
        **EXAMPLE,
        "processing": {**EXAMPLE["processing"], "sintering_temperature": 1300 + i % 900},
        "microstructure": {**EXAMPLE["microstructure"], "porosity": round(0.001 + (i // 900 % 2990) * 1e-4, 5)},
        "include_feature_importance": False,
    }


@dataclass
class Cluster:
    """The running cluster as deploy/cluster.sh left it (cluster.env, pid files, haproxy.sock)."""

    directory: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> Cluster:
        env_file = directory / "cluster.env"
        if not env_file.exists():
            raise SystemExit(f"no cluster at {directory} (run `make cluster-up` first)")
        pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        return cls(directory, {k: v for k, v in pairs})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['CLUSTER_PORT']}"

    def instance_url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.env[f'INSTANCE{n}_PORT']}"

    def script(self, *args: str, **env: str) -> None:
        subprocess.run(["bash", str(CLUSTER_SH), *args], check=True, env=self.script_env(os.environ, **env))

    def script_env(self, caller: Mapping[str, str], **env: str) -> dict[str, str]:
        """cluster.sh's environment: the caller's, with the ports and source tree the cluster was
        started with (cluster.env) whatever the caller's say (start-instance would otherwise put a
        restarted instance on the default ports, serving the default tree), then ``env``."""
        started_with = {k: v for k, v in self.env.items() if not k.startswith("INSTANCE")}
        started_with["CLUSTER_BASE_PORT"] = self.env.get("INSTANCE1_PORT", "3101")
        return {**caller, **started_with, "CLUSTER_DIR": str(self.directory), **env}

    def haproxy(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.directory / "haproxy.sock"))
            sock.sendall(command.encode() + b"\n")
            return b"".join(iter(lambda: sock.recv(65536), b"")).decode()

    def enable_only(self, names: tuple[str, ...]) -> None:
        for server in SERVERS:
            self.haproxy(f"set server armor/{server} state {'ready' if server in names else 'maint'}")

    def stats(self) -> dict[str, dict[str, str]]:
        """`show stat` rows of the armor backend and its servers, by server name."""
        lines = self.haproxy("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {row["svname"]: row for row in rows if row.get("pxname") == "armor"}

    def pid(self, name: str) -> int | None:
        path = self.directory / f"{name}.pid"
        try:
            pid = int(path.read_text().strip())
            return pid if psutil.pid_exists(pid) else None
        except (FileNotFoundError, ValueError):
            return None

    def processes(self, name: str) -> list[psutil.Process]:
        pid = self.pid(name)
        if pid is None:
            return []
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]

    def redis(self) -> redis.Redis:
        return redis.Redis(port=int(self.env["CLUSTER_REDIS_PORT"]), socket_timeout=2)

    async def wait_ready(self, n: int, timeout_s: float = 180) -> float:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() - started < timeout_s:
                try:
                    if (await http.get(self.instance_url(n) + "/readyz")).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"instance {n} not ready after {timeout_s} s")


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


class CpuMeter:
    """CPU seconds of the instances, HAProxy, Redis and this process's children (wrk) over a span."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.groups = {
            "instances": [p for n in (1, 2, 3) for p in cluster.processes(f"instance{n}")],
            "haproxy": cluster.processes("haproxy"),
            "redis": cluster.processes("redis"),
        }

    def snapshot(self) -> dict[str, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        machine = psutil.cpu_times()
        return {
            **{name: cpu_seconds(procs) for name, procs in self.groups.items()},
            "client": children.ru_utime + children.ru_stime,
            "machine": machine.user + machine.system + machine.nice + machine.softirq + machine.irq,
        }


def redis_commands(cluster: Cluster) -> int:
    return int(cluster.redis().info("stats")["total_commands_processed"])


def run_wrk(url: str, seconds: float, connections: int, script: Path, *args: str) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "-s", str(script), url, "--", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": requests,
        "req_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def throughput(cluster: Cluster, seconds: float, connections: int) -> list[dict]:
    new_script = cluster.directory / "wrk_new_material.lua"
    new_script.write_text(WRK_NEW_MATERIAL)
    repeat_script = REPO / "loadtests" / "wrk_post.lua"
    rows = []
    offset = random.Random().randrange(10**6) * 10**7  # a rerun does not meet the last run's cache
    for kind, script in (("new", new_script), ("repeat", repeat_script)):
        for count in (1, 2, 3):
            cluster.enable_only(SERVERS[:count])
            time.sleep(1.5)  # let keep-alive connections to disabled servers close
            offset += 10**7
            meter = CpuMeter(cluster)
            before, commands = meter.snapshot(), redis_commands(cluster)
            result = run_wrk(cluster.url + PREDICT, seconds, connections, script, str(offset))
            after, commands = meter.snapshot(), redis_commands(cluster) - commands - 1
            spent = {name: after[name] - before[name] for name in before}
            n = result["requests"]
            rows.append(
                {
                    "bodies": kind,
                    "instances": count,
                    **result,
                    "cpu_ms_per_request": {name: round(1e3 * s / n, 3) for name, s in spent.items()},
                    "instance_cores_used": round(spent["instances"] / seconds, 2),
                    "redis_commands_per_request": round(commands / n, 2),
                }
            )
            cpu_ms = rows[-1]["cpu_ms_per_request"]["instances"]
            print(f"  {kind:6s} x{count}: {result['req_per_s']:8.1f} req/s, {cpu_ms:.2f} ms CPU/request", flush=True)
    cluster.enable_only(SERVERS)
    return rows


async def send_all(url: str, bodies: list[dict], concurrency: int = 8) -> list[tuple[int, bool, str]]:
    """(status, cached, served by) for each body, `concurrency` at a time."""
    results: list[tuple[int, bool, str]] = []
    queue = list(bodies)
    async with httpx.AsyncClient(timeout=10) as http:

        async def worker() -> None:
            while queue:
                response = await http.post(url + PREDICT, json=queue.pop())
                cached = response.status_code == 200 and response.json().get("cached") is True
                results.append((response.status_code, cached, response.headers.get("x-served-by", "")))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def shared_cache(cluster: Cluster, first: int, count: int) -> dict:
    bodies = [material(first + i) for i in range(count)]
    report: dict = {"materials": count}
    for server in SERVERS:
        cluster.enable_only((server,))
        await asyncio.sleep(1.5)
        results = await send_all(cluster.url, bodies)
        report[server] = {
            "ok": sum(r[0] == 200 for r in results),
            "cached_percent": round(100 * sum(r[1] for r in results) / len(results), 1),
            "served_by": sorted({r[2] for r in results}),
        }
    cluster.enable_only(SERVERS)
    return report


async def restart_all(cluster: Cluster, backend: str) -> float:
    started = time.monotonic()
    for n in (1, 2, 3):
        await asyncio.to_thread(cluster.script, "stop-instance", str(n))
    for n in (1, 2, 3):
        await asyncio.to_thread(cluster.script, "start-instance", str(n), "--no-wait", CACHE_BACKEND=backend)
    for n in (1, 2, 3):
        await cluster.wait_ready(n)
    await asyncio.sleep(2)  # HAProxy's checks (inter 1 s, rise 1) see them up
    return time.monotonic() - started


@dataclass
class Traffic:
    """Closed-loop clients through HAProxy; records every outcome with its time."""

    url: str
    clients: int
    repeat_share: float = 0.0
    records: list[tuple[float, int, bool, str, str]] = field(default_factory=list)  # t, status, cached, server, error
    stop: bool = False
    started: float = 0.0

    async def run(self, first_material: int) -> None:
        self.started = time.monotonic()
        counter = iter(range(first_material, first_material + 10**7))
        pool = [material(first_material - 1000 + i) for i in range(200)]
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), limits=httpx.Limits(max_connections=64)) as http:

            async def client(seed: int) -> None:
                rng = random.Random(seed)
                while not self.stop:
                    body = rng.choice(pool) if rng.random() < self.repeat_share else material(next(counter))
                    t = time.monotonic() - self.started
                    try:
                        response = await http.post(self.url + PREDICT, json=body)
                        cached = response.status_code == 200 and response.json().get("cached") is True
                        server = response.headers.get("x-served-by", "")
                        self.records.append((t, response.status_code, cached, server, ""))
                    except httpx.HTTPError as exc:
                        self.records.append((t, 0, False, "", type(exc).__name__))

            await asyncio.gather(*(client(k) for k in range(self.clients)))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self, start: float = 0.0, end: float = float("inf")) -> dict:
        rows = [r for r in self.records if start <= r[0] < end]
        ok = [r for r in rows if r[1] == 200]
        return {
            "requests": len(rows),
            "failed": len(rows) - len(ok),
            "failures": sorted({f"{r[1]} {r[4]}".strip() for r in rows if r[1] != 200}),
            "failure_times_s": [round(r[0], 3) for r in rows if r[1] != 200][:20],
            "cached_percent": round(100 * sum(r[2] for r in ok) / len(ok), 1) if ok else None,
        }


def retry_counters(cluster: Cluster) -> dict[str, int]:
    backend = cluster.stats()["BACKEND"]
    return {"retries": int(backend["wretr"] or 0), "redispatches": int(backend["wredis"] or 0)}


async def kill_and_restart(cluster: Cluster, clients: int, kill_at: float, restart_at: float) -> dict:
    traffic = Traffic(cluster.url, clients)
    counters = retry_counters(cluster)
    events: dict[str, float] = {}
    transitions: list[tuple[float, str]] = []
    task = asyncio.create_task(traffic.run(first_material=random.randrange(10**6) * 10**4))

    async def watch_i3() -> None:
        last = ""
        while not traffic.stop:
            status = cluster.stats().get("i3", {}).get("status", "")
            if status != last:
                transitions.append((round(traffic.elapsed(), 2), status))
                last = status
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch_i3())
    await asyncio.sleep(kill_at)
    events["killed"] = traffic.elapsed()
    await asyncio.to_thread(cluster.script, "kill-instance", "3")
    await asyncio.sleep(max(0.0, restart_at - traffic.elapsed()))
    events["restarted"] = traffic.elapsed()
    await asyncio.to_thread(cluster.script, "start-instance", "3", "--no-wait")
    while traffic.elapsed() < events["restarted"] + 180:
        served = [r[0] for r in traffic.records if r[3] == "i3" and r[0] > events["restarted"]]
        if served:
            events["i3_serving_again"] = min(served)
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(5)  # traffic on all three again
    traffic.stop = True
    await task
    watcher.cancel()
    after = retry_counters(cluster)
    served_while_down = [
        r for r in traffic.records if r[3] == "i3" and events["killed"] < r[0] < events.get("i3_serving_again", 1e9)
    ]
    return {
        "clients": clients,
        **traffic.summary(),
        "seconds": round(traffic.elapsed(), 1),
        "killed_at_s": round(events["killed"], 2),
        "restarted_at_s": round(events["restarted"], 2),
        "restart_to_serving_s": round(events["i3_serving_again"] - events["restarted"], 2)
        if "i3_serving_again" in events
        else None,
        "answered_by_i3_while_down": len(served_while_down),
        "haproxy_i3_status": transitions,
        "haproxy_retries": after["retries"] - counters["retries"],
        "haproxy_redispatches": after["redispatches"] - counters["redispatches"],
        "during_outage": traffic.summary(events["killed"], events.get("i3_serving_again", 1e9)),
    }


async def rolling_restart(cluster: Cluster, clients: int) -> dict:
    """Each instance in turn: SIGTERM (cluster.sh stop-instance: HAProxy's drain state, then the
    instance's own drain), started again and ready, then the next; every request counted."""
    traffic = Traffic(cluster.url, clients)
    task = asyncio.create_task(traffic.run(first_material=random.randrange(10**6) * 10**4))
    steps: list[dict] = []
    await asyncio.sleep(3)
    for n in (1, 2, 3):
        stopping = traffic.elapsed()
        await asyncio.to_thread(cluster.script, "stop-instance", str(n))
        stopped = traffic.elapsed()
        await asyncio.to_thread(cluster.script, "start-instance", str(n))
        await asyncio.sleep(2)  # HAProxy's check (inter 1 s, rise 1) sees it up
        steps.append(
            {
                "instance": f"i{n}",
                "sigterm_at_s": round(stopping, 2),
                "stopped_after_s": round(stopped - stopping, 2),
                "serving_again_after_s": round(traffic.elapsed() - stopping, 2),
            }
        )
    await asyncio.sleep(3)
    traffic.stop = True
    await task
    return {"clients": clients, **traffic.summary(), "seconds": round(traffic.elapsed(), 1), "steps": steps}


async def redis_restart(cluster: Cluster, clients: int, stop_at: float, down_s: float, seconds: float) -> dict:
    traffic = Traffic(cluster.url, clients, repeat_share=0.5)
    task = asyncio.create_task(traffic.run(first_material=random.randrange(10**6) * 10**4))
    await asyncio.sleep(stop_at)
    stopped = traffic.elapsed()
    await asyncio.to_thread(cluster.script, "stop-redis")
    await asyncio.sleep(down_s)
    started = traffic.elapsed()
    await asyncio.to_thread(cluster.script, "start-redis")
    await asyncio.sleep(max(0.0, seconds - traffic.elapsed()))
    traffic.stop = True
    await task
    return {
        "clients": clients,
        **traffic.summary(),
        "seconds": round(traffic.elapsed(), 1),
        "redis_stopped_at_s": round(stopped, 2),
        "redis_started_at_s": round(started, 2),
        "before": traffic.summary(0, stopped),
        "redis_down": traffic.summary(stopped, started),
        "after": traffic.summary(started),
    }


def redis_benchmark(cluster: Cluster) -> dict:
    client = cluster.redis()
    sizes = [client.strlen(key) for key in list(client.scan_iter(count=1000))[:200] if client.type(key) == b"string"]
    value_bytes = int(sum(sizes) / len(sizes)) if sizes else 2000
    out = subprocess.run(
        ["redis-benchmark", "-p", cluster.env["CLUSTER_REDIS_PORT"], "--dbnum", "15", "-t", "set,get",
         "-n", "200000", "-c", "50", "-d", str(value_bytes), "-q"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    client.select(15)
    client.flushdb()
    rates = dict(re.findall(r"(SET|GET): ([\d.]+) requests per second", out.replace("\r", "\n")))
    return {
        "value_bytes": value_bytes,
        "clients": 50,
        "pipeline": 1,
        "set_per_s": float(rates["SET"]),
        "get_per_s": float(rates["GET"]),
    }


def print_table(results: dict) -> None:
    print("\n== throughput through HAProxy (wrk -t2, same client, same run) ==")
    print(f"{'bodies':7} {'inst':>4} {'req/s':>9} {'non2xx':>6} {'inst CPU ms/req':>15} "
          f"{'haproxy':>8} {'redis':>6} {'client':>7} {'inst cores':>10} {'redis cmd/req':>13}")  # fmt: skip
    for row in results.get("throughput", []):
        cpu = row["cpu_ms_per_request"]
        errors = row["non_2xx"] + row["socket_errors"]
        print(f"{row['bodies']:7} {row['instances']:>4} {row['req_per_s']:>9.1f} {errors:>6} "
              f"{cpu['instances']:>15.3f} {cpu['haproxy']:>8.3f} {cpu['redis']:>6.3f} {cpu['client']:>7.3f} "
              f"{row['instance_cores_used']:>10.2f} {row['redis_commands_per_request']:>13.2f}")  # fmt: skip
    for key in ("shared_cache_redis", "shared_cache_memory"):
        if key in results:
            r = results[key]
            print(f"\n== {key}: {r['materials']} materials via i1, then i2, then i3 (cached %) ==")
            print("  " + ", ".join(f"{s}: {r[s]['cached_percent']} % ({r[s]['ok']} ok)" for s in SERVERS))
    if "kill" in results:
        k = results["kill"]
        print(f"\n== SIGKILL i3 at {k['killed_at_s']} s, restart at {k['restarted_at_s']} s ==")
        print(f"  requests {k['requests']}, failed {k['failed']} {k['failures']}, "
              f"retries {k['haproxy_retries']}, redispatches {k['haproxy_redispatches']}, "
              f"restart -> serving {k['restart_to_serving_s']} s")  # fmt: skip
    if "rolling" in results:
        r = results["rolling"]
        print(f"\n== rolling restart (SIGTERM, drain, start) of i1, i2, i3 under {r['clients']} clients ==")
        print(f"  requests {r['requests']}, failed {r['failed']} {r['failures']}, {r['seconds']} s")
    if "redis_restart" in results:
        r = results["redis_restart"]
        print(f"\n== Redis stopped at {r['redis_stopped_at_s']} s, started at {r['redis_started_at_s']} s ==")
        print(f"  requests {r['requests']}, failed {r['failed']} {r['failures']}; cached % before "
              f"{r['before']['cached_percent']}, down {r['redis_down']['cached_percent']}, "
              f"after {r['after']['cached_percent']}")  # fmt: skip
    if "redis_benchmark" in results:
        b = results["redis_benchmark"]
        print(f"\n== redis-benchmark ({b['value_bytes']} B values, {b['clients']} clients, no pipelining) ==")
        print(f"  SET {b['set_per_s']:.0f}/s, GET {b['get_per_s']:.0f}/s")


async def main_async(args: argparse.Namespace) -> dict:
    cluster = Cluster.load(args.cluster_dir)
    everything = {"throughput", "cache", "kill", "rolling", "redis", "benchmark"}
    phases = set(args.only.split(",")) if args.only else everything
    results: dict = {
        "machine": {"cores": psutil.cpu_count(), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": {"API_WORKERS": "1", "PREDICTION_WORKERS": "1", "wrk_connections": args.connections,
                     "wrk_seconds": args.seconds, "clients": args.clients},
    }  # fmt: skip
    cluster.enable_only(SERVERS)
    if "throughput" in phases:
        print("phase 1: throughput with 1, 2, 3 instances", flush=True)
        results["throughput"] = await asyncio.to_thread(throughput, cluster, args.seconds, args.connections)
    if "cache" in phases:
        print("phase 2: shared cache (Redis)", flush=True)
        results["shared_cache_redis"] = await shared_cache(cluster, random.randrange(10**6) * 1000, args.materials)
    if "kill" in phases:
        print("phase 3: SIGKILL one instance under load, then restart it", flush=True)
        results["kill"] = await kill_and_restart(cluster, args.clients, kill_at=8, restart_at=16)
    if "rolling" in phases:
        print("phase 4b: rolling restart (SIGTERM, drain, start) of every instance under load", flush=True)
        results["rolling"] = await rolling_restart(cluster, args.clients)
    if "redis" in phases:
        print("phase 4: restart Redis under load", flush=True)
        results["redis_restart"] = await redis_restart(cluster, args.clients, stop_at=6, down_s=3, seconds=20)
    if "benchmark" in phases:
        print("phase 5: redis-benchmark", flush=True)
        results["redis_benchmark"] = await asyncio.to_thread(redis_benchmark, cluster)
    if "cache" in phases:
        print("phase 2b: shared cache without Redis (instances restarted with CACHE_BACKEND=memory)", flush=True)
        results["restart_memory_s"] = round(await restart_all(cluster, "memory"), 1)
        try:
            results["shared_cache_memory"] = await shared_cache(cluster, random.randrange(10**6) * 1000, args.materials)
        finally:
            results["restart_redis_s"] = round(await restart_all(cluster, "redis"), 1)
    cluster.enable_only(SERVERS)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-dir", type=Path, default=Path(os.environ.get("CLUSTER_DIR", "/tmp/armor-cluster")))
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk duration per throughput step")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--clients", type=int, default=8, help="closed-loop clients in the kill/Redis phases")
    parser.add_argument("--materials", type=int, default=200, help="materials in the shared-cache phase")
    parser.add_argument("--only", help="comma list of throughput,cache,kill,rolling,redis,benchmark")
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "cluster-results.json")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print_table(results)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
