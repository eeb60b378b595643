"""The monitoring views in-process (one worker); tests/test_e2e_serve.py checks them across two."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from monitoring.window import Ring, latency_summary, read_series

EXAMPLE = json.loads((Path(__file__).parent / "testdata" / "example_request.json").read_text())


def body(i: int) -> dict:
    return {**EXAMPLE, "processing": {**EXAMPLE["processing"], "sintering_temperature": 1400 + i}}


def _featurised(client) -> float:
    """Featurisations counted by the mechanical runner core (in-process it keeps its own metrics;
    under bentoml serve its series join the API's: tests/test_e2e_serve.py)."""
    metrics = client.core.predictor.runners["mechanical"].core.metrics
    metrics.tally.flush()
    return metrics.registry.get_sample_value("armor_feature_extraction_seconds_count")


def test_performance_counts_requests_hits_and_batches(client):
    featurised = _featurised(client)
    for i in list(range(6)) + [0, 1, 2]:
        assert client.post("/api/v1/predict/mechanical", json=body(i)).status_code == 200
    client.post("/api/v1/predict/mechanical", json={"composition": {"SiC": 2}})  # a 422
    perf = client.get("/api/v1/performance").json()
    assert perf["predictions"]["mechanical"]["requests"] == 9
    assert perf["predictions"]["mechanical"]["errors"] == 1
    assert (perf["response_cache"]["hits"], perf["response_cache"]["misses"]) == (3, 6)
    assert perf["response_cache"]["hit_rate_percent"] == pytest.approx(33.33, abs=0.01)
    assert perf["feature_extraction"]["count"] == 0  # the runner featurises the default model's rows
    assert _featurised(client) - featurised == 6
    assert perf["batching"]["mechanical"]["window_batches"] >= 6
    window = perf["predictions"]["mechanical"]
    assert window["window_requests"] == 9 and window["p50_ms"] <= window["p95_ms"] <= window["p99_ms"]


def test_status_reports_this_process_as_psutil_sees_it(client):
    status = client.get("/api/v1/status").json()
    rows = {p["pid"]: p for p in status["resources"]["processes"]}
    assert os.getpid() in rows
    assert rows[os.getpid()]["rss_mb"] == pytest.approx(psutil.Process().memory_info().rss / 1e6, rel=0.1)
    assert status["cache"] == {"backend": "memory", "reachable": None}
    assert status["versions"]["bentoml"] and status["uptime_s"] > 0


def test_models_lists_versions_with_metrics_and_the_serving_one(client, stored_tags):
    models = client.get("/api/v1/models").json()
    for family, tag in stored_tags.items():
        assert models[family]["serving"] == tag
        serving = [v for v in models[family]["versions"] if v["serving"]]
        assert [v["tag"] for v in serving] == [tag] and serving[0]["metrics"]


def _write_ring(directory: str, values: list[float], now: float) -> None:
    ring = Ring(Path(directory), "mechanical", capacity=8)
    for value in values:
        ring.append(value, now=now)


def test_rings_of_several_processes_are_read_together(tmp_path):
    import multiprocessing

    now = time.time()
    child = multiprocessing.get_context("fork").Process(target=_write_ring, args=(str(tmp_path), [0.5] * 3, now))
    child.start()
    child.join(10)
    _write_ring(str(tmp_path), [0.001 * i for i in range(10)], now)  # wraps: the last 8 stay
    old = Ring(tmp_path, "ballistic")
    old.append(9.0, now=now - 1000)
    rows = read_series(tmp_path, "mechanical", window_s=60, now=now)
    assert sorted(rows[:, 1].tolist()) == pytest.approx(sorted([0.5] * 3 + [0.001 * i for i in range(2, 10)]))
    assert read_series(tmp_path, "ballistic", window_s=60, now=now).size == 0


def test_latency_summary_window_and_throughput():
    now = time.time()
    summary = latency_summary(np.array([[now, 0.010], [now, 0.020], [now - 120, 0.030]]), window_s=300, now=now)
    assert summary["window_requests"] == 3 and summary["throughput_rps"] == pytest.approx(2 / 60)
    assert summary["p50_ms"] == pytest.approx(20.0) and summary["mean_ms"] == pytest.approx(20.0)


def test_a_killed_process_not_yet_reaped_is_not_listed():
    # issue 14, item 8: after a runner kill /api/v1/status still listed the dead process
    import multiprocessing
    import os
    import time

    from monitoring.report import ProcessMonitor

    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
    child.start()
    monitor = ProcessMonitor(os.getpid())
    assert child.pid in {p.pid for p in monitor.processes()}
    os.kill(child.pid, 9)
    time.sleep(0.3)  # dead, not reaped: a zombie
    assert child.pid not in {p.pid for p in monitor.processes()}
    child.join()
