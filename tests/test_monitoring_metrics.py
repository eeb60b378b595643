"""monitoring/metrics.py: the per-request series' label children, looked up once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitoring.metrics import Metrics


def test_the_kept_children_are_the_series_labels_gives() -> None:
    metrics = Metrics(CollectorRegistry())
    assert metrics.request_counter("mechanical", 200) is metrics.requests.labels("mechanical", "2xx")
    assert metrics.request_counter("mechanical", 404) is metrics.request_counter("mechanical", 422)
    assert metrics.request_counter("ballistic", 503) is metrics.requests.labels("ballistic", "5xx")
    assert metrics.request_latency("hardness") is metrics.request_seconds.labels("hardness")
    assert metrics.request_latency("hardness") is not metrics.request_latency("mechanical")
