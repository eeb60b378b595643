"""Locust user classes for the armor prediction API; pick one by class name on the command line.

    locust -f loadtests/locustfile.py --headless -u 10 -r 10 -t 60s --host http://127.0.0.1:3000 MixedUser

Environment (loadtests/run.py sets these; the defaults suit an ad-hoc run):
    LOADTEST_RATE_PER_USER  requests/s per user, constant pacing (default 5; total = users x this)
    LOADTEST_SEED           seed of the generated bodies (default 42)
    LOADTEST_REPEAT_PROB    share of requests that resend a pooled body (default 0.7)
    LOADTEST_POOL_SIZE      bodies kept for repeats (default 500; below the response cache size)
    LOADTEST_COUNTS_FILE    if set, where to write per-name counts of cached true/false at test stop

Request names say whether the body was new or a repeat ("mixed/ballistic repeat"), so the
per-name rows of the CSV separate cache-hit candidates from cache misses.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import random

import gevent
from locust import constant_throughput, events, task
from locust import stats as locust_stats
from locust.contrib.fasthttp import FastHttpUser

try:  # `locust -f loadtests/locustfile.py` imports this file as a top-level module
    from loadtests.materials import RequestPool, hardness_body, material_body
except ImportError:  # run from inside loadtests/ without the repo root on sys.path
    from materials import RequestPool, hardness_body, material_body

RATE_PER_USER = float(os.environ.get("LOADTEST_RATE_PER_USER", "5"))
SEED = int(os.environ.get("LOADTEST_SEED", "42"))
REPEAT_PROB = float(os.environ.get("LOADTEST_REPEAT_PROB", "0.7"))
POOL_SIZE = int(os.environ.get("LOADTEST_POOL_SIZE", "500"))
PATHS = {
    "mechanical": "/api/v1/predict/mechanical",
    "ballistic": "/api/v1/predict/ballistic",
    "hardness": "/api/v1/predict/hardness",
}

_user_ids = itertools.count()
CACHED_COUNTS: collections.Counter = collections.Counter()  # (name, cached) -> responses


def pool_of(kind: str | None, importance_prob: float, seed: int) -> RequestPool:
    """A shared pool of (kind, body); kind None draws mechanical 60 % / ballistic 40 %."""

    def factory(rng: random.Random):
        k = kind or rng.choices(("mechanical", "ballistic"), weights=(60, 40))[0]
        return k, material_body(rng, ballistic=k == "ballistic", importance_prob=importance_prob)

    return RequestPool(factory, repeat_prob=REPEAT_PROB, max_size=POOL_SIZE, seed=seed)


class ArmorUser(FastHttpUser):
    """Sends one prediction per task, paced so the total rate is users x RATE_PER_USER."""

    abstract = True
    wait_time = constant_throughput(RATE_PER_USER)
    network_timeout = 10.0  # fail fast instead of hiding a stall behind a 60 s default
    connection_timeout = 5.0
    pool: RequestPool | None = None
    scenario = "armor"

    def on_start(self) -> None:
        # Per-user rng, seeded by spawn order, so a rerun sends the same bodies.
        self.rng = random.Random(SEED * 1000 + next(_user_ids))

    @task
    def predict(self) -> None:
        (kind, body), repeated = self.next_request()
        self.send(kind, body, f"{self.scenario}/{kind} {'repeat' if repeated else 'new'}")

    def next_request(self):
        return self.pool.next(self.rng)

    def send(self, kind: str, body: dict, name: str) -> None:
        with self.client.post(PATHS[kind], json=body, name=name, catch_response=True) as resp:
            problem = check(resp)
            if problem:
                resp.failure(problem)
            else:
                CACHED_COUNTS[(name, resp.json()["cached"])] += 1


def check(resp) -> str | None:
    """Why a response fails the contract, or None: 200, a JSON object, and a boolean `cached`."""
    if resp.status_code != 200:
        return f"HTTP {resp.status_code}: {(resp.text or '')[:200]}"
    try:
        data = resp.json()
    except (ValueError, TypeError):
        return "response is not JSON"
    if not isinstance(data, dict) or not isinstance(data.get("cached"), bool):
        return "response has no boolean 'cached'"
    return None


class MechanicalUser(ArmorUser):
    """Mechanical predictions only, ~70 % repeats from a shared pool."""

    scenario = "mechanical"
    pool = pool_of("mechanical", importance_prob=0.0, seed=SEED + 1)


class BallisticUser(ArmorUser):
    """Ballistic predictions only (with armor configs), ~70 % repeats from a shared pool."""

    scenario = "ballistic"
    pool = pool_of("ballistic", importance_prob=0.0, seed=SEED + 2)


class MixedUser(ArmorUser):
    """Production-like: 60/40 mechanical/ballistic, ~70 % repeats, 10 % ask for feature importance."""

    scenario = "mixed"
    pool = pool_of(None, importance_prob=0.1, seed=SEED + 3)


class ColdUser(ArmorUser):
    """Every request is a new body (mechanical/ballistic 50/50): the uncached path."""

    scenario = "cold"

    def next_request(self):
        kind = self.rng.choice(("mechanical", "ballistic"))
        return (kind, material_body(self.rng, ballistic=kind == "ballistic")), False


class HardnessUser(ArmorUser):
    """Hardness of compounds of the measured table at one to three loads, ~70 % repeats."""

    scenario = "hardness"
    pool = RequestPool(lambda rng: ("hardness", hardness_body(rng)), REPEAT_PROB, POOL_SIZE, SEED + 4)


@events.quit.add_listener
def final_csv_write(**_kwargs) -> None:
    """Let Locust's CSV writer run once more with the final stats before it closes the files.

    It rewrites *_stats.csv every CSV_STATS_INTERVAL_SEC and does not write at shutdown, so
    without this the CSV misses up to the last second of requests.
    """
    gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.3)


@events.test_stop.add_listener
def write_cached_counts(**_kwargs) -> None:
    """Per request name: how many responses said cached true/false (shows whether caching works)."""
    path = os.environ.get("LOADTEST_COUNTS_FILE")
    if not path:
        return
    out: dict[str, dict[str, int]] = {}
    for (name, cached), n in CACHED_COUNTS.items():
        out.setdefault(name, {"cached": 0, "uncached": 0})["cached" if cached else "uncached"] += n
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
