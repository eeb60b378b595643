"""monitoring/metrics.py: the per-request series' label children, looked up once; the model tag
that answered on the request series and the serving tag as an info series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from monitoring.metrics import NO_MODEL, Metrics


def test_the_kept_children_are_the_series_labels_gives() -> None:
    metrics = Metrics(CollectorRegistry())
    tag = "armor_mechanical:abc"
    assert metrics.request_counter("mechanical", 200, tag) is metrics.requests.labels("mechanical", "2xx", tag)
    assert metrics.request_counter("mechanical", 404) is metrics.request_counter("mechanical", 422, NO_MODEL)
    assert metrics.request_counter("ballistic", 503) is metrics.requests.labels("ballistic", "5xx", NO_MODEL)
    assert metrics.request_latency("hardness", tag) is metrics.request_seconds.labels("hardness", tag)
    assert metrics.request_latency("hardness", tag) is not metrics.request_latency("mechanical", tag)


def _info(metrics: Metrics) -> dict[str, float]:
    return {
        f"{s.labels['family']} {s.labels['tag']}": s.value
        for family in metrics.model_info.collect()
        for s in family.samples
    }


def test_the_info_series_follows_the_serving_tag() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.serving("mechanical", "armor_mechanical:v1")
    metrics.serving("hardness", "armor_hardness:h1")
    assert _info(metrics) == {"mechanical armor_mechanical:v1": 1.0, "hardness armor_hardness:h1": 1.0}
    metrics.serving("mechanical", "armor_mechanical:v2")  # a rollout
    assert _info(metrics) == {
        "mechanical armor_mechanical:v1": 0.0,
        "mechanical armor_mechanical:v2": 1.0,
        "hardness armor_hardness:h1": 1.0,
    }
    assert b'armor_model_info{family="mechanical",tag="armor_mechanical:v2"} 1.0' in generate_latest(metrics.registry)


def test_a_request_is_counted_under_the_tag_that_answered(client) -> None:
    from tests.support import example

    client.post("/api/v1/predict/mechanical", json=example())
    client.post("/api/v1/predict/mechanical", json=example() | {"model_version": "armor_mechanical:doesnotexist"})
    metrics = client.core.metrics
    metrics.tally.flush()
    serving = client.get("/api/v1/models").json()["mechanical"]["serving"]
    text = generate_latest(metrics.registry).decode()
    assert f'armor_requests_total{{endpoint="mechanical",model="{serving}",status="2xx"}} 1.0' in text
    assert 'armor_requests_total{endpoint="mechanical",model="none",status="4xx"} 1.0' in text
    assert f'armor_request_duration_seconds_count{{endpoint="mechanical",model="{serving}"}} 1.0' in text
    assert f'armor_model_info{{family="mechanical",tag="{serving}"}} 1.0' in text
