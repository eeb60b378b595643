"""End-to-end, one real `bentoml serve` (2 API workers, 1 runner worker, ACCESS_LOG on) through its
life: a request's id reaches the runner's log lines; a paused runner and a killed one give /readyz
503 with the reason and predictions 503 with Retry-After (or an answer), the death and the restart
are logged, and everything recovers; a killed API worker is logged and replaced while the other
serves; then SIGTERM with batches (JSON and streamed NDJSON, 1,000 rows each), single and hardness
predictions in flight: every one is answered 200 with every row, /readyz is 503 during the grace
period while requests are still served, every answered row is in the prediction log (its writer
process stops after the API workers), no process of the serve is left, and every line it wrote is
JSON (serving/drain.py, serving/readiness.py, serving/workers.py, serving/log_writer.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from collections import Counter

import httpx
import psutil
import pytest

from loadtests.batch_bench import candidate_rows
from tests.support import BentoServer

pytestmark = pytest.mark.e2e

BATCHES, NDJSON_EVERY, ROWS, SINGLES, HARDNESS_EVERY = 40, 4, 1_000, 32, 4
GRACE_S = 5.0  # the default; under CPU contention a request sent just before SIGTERM needs it to be read


@pytest.fixture(scope="module")
def served(stored_tags, hardness_tag, bentoml_home):
    server = BentoServer(
        {
            "BENTOML_HOME": bentoml_home,
            "API_WORKERS": "2",
            "PREDICTION_WORKERS": "1",
            "SHUTDOWN_GRACE_S": str(GRACE_S),
            "SHUTDOWN_TIMEOUT_S": "60",
            "ACCESS_LOG": "true",
            # the prediction log's writer process stops after the API workers: what they queued is written
            "PREDICTION_LOG": "true",
            "DATABASE_URL": f"sqlite:///{bentoml_home}/prediction-log-drain.sqlite3",
            "PREDICTION_LOG_QUEUE": str(4 * BATCHES * ROWS),  # every row held: none dropped as queue_full
        }
    )
    server.start()
    yield server
    server.stop()


def _log(server: BentoServer) -> list[dict]:
    server.log.flush()
    with open(server.log.name) as lines:
        return [json.loads(line) for line in lines if line.strip()]  # fails on any line that is not JSON


def _runner(server: BentoServer) -> psutil.Process:
    (runner,) = [p for p in psutil.Process(server.process.pid).children() if "armor_models" in " ".join(p.cmdline())]
    return runner


def _timed_get(url: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    response = httpx.get(url, timeout=10)
    return response.status_code, response.text, time.perf_counter() - started


def _ready_again(server: BentoServer, limit_s: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"/readyz not 200 again within {limit_s} s")


def test_the_request_id_reaches_the_runners_log_lines(served):
    body = candidate_rows(1, seed=7)[0] | {"model_version": "no-such-version"}  # the card call goes through BentoML
    response = httpx.post(f"{served.url}/api/v1/predict/mechanical", json=body, headers={"X-Request-ID": "e2e-id-1"})
    assert response.status_code == 404 and response.json()["request_id"] == "e2e-id-1"
    time.sleep(0.5)
    mine = [line for line in _log(served) if line.get("request_id") == "e2e-id-1"]
    components = {line["component"].split(":")[0] for line in mine}
    assert components == {"entry_service", "service"}, mine  # the API's lines and the runner's


def test_a_paused_runner_is_not_ready_and_predictions_are_503_then_all_recovers(served):
    runner = _runner(served)
    runner.suspend()
    try:
        ready, reason, ready_s = _timed_get(f"{served.url}/readyz")
        started = time.perf_counter()
        predicted = httpx.post(f"{served.url}/api/v1/predict/ballistic", json=candidate_rows(1, seed=8)[0], timeout=60)
        predict_s = time.perf_counter() - started
    finally:
        runner.resume()
    back_s = _ready_again(served)
    print(
        f"\nrunner paused: /readyz {ready} in {ready_s:.3f} s ({reason!r}); prediction {predicted.status_code} "
        f"in {predict_s:.2f} s; /readyz 200 again {back_s:.2f} s after SIGCONT"
    )
    assert (ready, reason) == (503, "the runner did not answer the readiness check within 0.5 s")
    assert predicted.status_code == 503 and predicted.headers["retry-after"] == "1"


def test_a_killed_runner_is_logged_restarted_and_all_recovers(served):
    runner = _runner(served)
    runner.kill()
    runner.wait(10)
    ready, reason, ready_s = _timed_get(f"{served.url}/readyz")
    back_s = _ready_again(served)
    answered = httpx.post(f"{served.url}/api/v1/predict/mechanical", json=candidate_rows(1, seed=9)[0], timeout=60)
    print(f"\nrunner killed: /readyz {ready} in {ready_s:.3f} s ({reason!r}); 200 again after {back_s:.2f} s")
    assert ready == 503 and reason.startswith("the runner")
    assert answered.status_code == 200
    events = [(line["level"], line.get("event"), line.get("pid")) for line in _log(served) if line.get("event")]
    assert ("ERROR", "worker_exit", runner.pid) in events
    assert any(event[:2] == ("WARNING", "worker_restart") for event in events)


def _api_workers(server: BentoServer) -> list[psutil.Process]:
    """The serve's children but the runner and the prediction log's writer."""
    others = ("armor_models", "predlog.process")
    children = psutil.Process(server.process.pid).children()
    return [p for p in children if not any(name in " ".join(p.cmdline()) for name in others)]


def test_a_killed_api_worker_is_logged_replaced_and_the_other_serves_meanwhile(served):
    workers = _api_workers(served)
    assert len(workers) == 2
    victim, killed_at = workers[0], time.time()
    victim.kill()
    victim.wait(10)
    meanwhile = [  # new connections: the listening socket is shared, the surviving worker accepts
        httpx.post(f"{served.url}/api/v1/predict/mechanical", json=candidate_rows(1, seed=20 + i)[0], timeout=60)
        for i in range(20)
    ]
    started = time.monotonic()
    while len(_api_workers(served)) < 2 and time.monotonic() - started < 60:
        time.sleep(0.2)
    (replacement,) = [w for w in _api_workers(served) if w.pid not in {x.pid for x in workers}]
    print(
        f"\nAPI worker killed: {sum(r.status_code == 200 for r in meanwhile)}/20 answered 200 meanwhile; "
        f"its replacement started {replacement.create_time() - killed_at:.2f} s after the kill"
    )
    assert [r.status_code for r in meanwhile] == [200] * 20
    _ready_again(served)
    events = [(line["level"], line.get("event"), line.get("pid")) for line in _log(served) if line.get("event")]
    assert ("ERROR", "worker_exit", victim.pid) in events
    assert ("WARNING", "worker_restart", replacement.pid) in events


async def _answered(request) -> object:
    """The request's outcome; a lost connection is the error's name (counted, not raised)."""
    try:
        return await request
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
        return (error, 0) if request.__name__ == "_batch" else error


async def _batch(http: httpx.AsyncClient, i: int) -> tuple[int, int]:
    """(status, rows predicted) of a batch of ROWS distinct materials (every NDJSON_EVERY-th streamed)."""
    body = {"materials": candidate_rows(ROWS, seed=100 + i)}
    family = "mechanical" if i % 2 else "ballistic"
    if i % NDJSON_EVERY:
        response = await http.post(f"/api/v1/predict/{family}/batch", json=body)
        results = response.json()["results"] if response.status_code == 200 else []
        return response.status_code, sum("predictions" in row for row in results)
    headers = {"accept": "application/x-ndjson"}
    async with http.stream("POST", f"/api/v1/predict/{family}/batch", json=body, headers=headers) as response:
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    return response.status_code, sum("predictions" in line for line in lines)


async def _get(http: httpx.AsyncClient, path: str) -> int:
    return (await http.get(path)).status_code


async def _single(http: httpx.AsyncClient, i: int) -> int:
    if i % HARDNESS_EVERY == 0:
        body = {"formula": "B4C", "load_n": [0.98 + i, 9.8]}
        return (await http.post("/api/v1/predict/hardness", json=body)).status_code
    material = candidate_rows(1, seed=10_000 + i)[0]
    return (await http.post("/api/v1/predict/mechanical", json=material)).status_code


async def _load_then_sigterm(server: BentoServer) -> tuple[list, list, list]:
    """All requests sent, SIGTERM once they are in flight, then probes during the grace period."""
    limits = httpx.Limits(max_connections=BATCHES + SINGLES + 4)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:
        batches = [asyncio.create_task(_answered(_batch(http, i))) for i in range(BATCHES)]
        singles = [asyncio.create_task(_answered(_single(http, i))) for i in range(SINGLES)]
        await asyncio.sleep(1.0)  # bodies sent, the first chunks at the runner
        assert not all(task.done() for task in batches), "the batches ended before SIGTERM: nothing was in flight"
        os.kill(server.process.pid, signal.SIGTERM)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as probe:
            during = [await _answered(_get(probe, "/readyz")), await _answered(_get(probe, "/api/v1/health"))]
        return await asyncio.gather(*batches), await asyncio.gather(*singles), during


def _logged_rows(bentoml_home: str) -> int:
    with sqlite3.connect(f"{bentoml_home}/prediction-log-drain.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])


def test_sigterm_answers_every_request_in_flight_and_leaves_no_process(served, bentoml_home):
    workers = psutil.Process(served.process.pid).children(recursive=True)
    assert len(workers) >= 4  # 2 API workers, 1 runner worker, the prediction log's writer
    httpx.get(f"{served.url}/api/v1/predictions", params={"limit": 1}, timeout=30)  # this worker's rows so far
    time.sleep(1.5)  # the other worker's (handed over every PREDICTION_LOG_FLUSH_S)
    logged_before = _logged_rows(bentoml_home)
    batches, singles, during = asyncio.run(_load_then_sigterm(served))
    print(
        f"\nSIGTERM with {BATCHES} batches of {ROWS} rows and {SINGLES} single requests in flight: "
        f"{sum(s == 200 and r == ROWS for s, r in batches)}/{BATCHES} batches and "
        f"{sum(s == 200 for s in singles)}/{SINGLES} singles answered 200 with every row "
        f"(batches {Counter(batches)}, singles {Counter(singles)}: status or error, rows predicted)"
    )
    assert during == [503, 200]  # out of the load balancer, still serving
    assert batches == [(200, ROWS)] * BATCHES
    assert singles == [200] * SINGLES
    served.process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [w.pid for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"processes of the serve left running: {left}"
    drained = [line["message"] for line in _log(served) if line["logger"] == "armor.drain"]
    assert len(drained) == 3 and drained[-1] == "API workers stopped; stopping the runner"
    # every answered row (a batch's rows, a single or hardness answer) is in the log: nothing queued was lost
    assert _logged_rows(bentoml_home) - logged_before == BATCHES * ROWS + SINGLES
