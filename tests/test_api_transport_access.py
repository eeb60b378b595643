"""api/transport/access.py: optional API keys and the per-client rate limit of the prediction routes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from api.transport.rate_limit import SlidingWindow
from settings import AccessSettings
from tests.support import example


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_window_admits_the_limit_then_says_how_long_to_wait():
    clock = Clock()
    window = SlidingWindow(2, window_s=60, clock=clock)
    assert window.admit_now("a") is None
    clock.now += 10
    assert window.admit_now("a") is None and window.admit_now("b") is None
    assert window.admit_now("a") == 50  # the first of a's two requests leaves the window in 50 s
    clock.now += 50
    assert window.admit_now("a") is None


def app_with(make_core, access: AccessSettings) -> TestClient:
    core = make_core()
    return TestClient(create_app(lambda: core, 65536, access=access))


def test_without_settings_nothing_is_asked(client):
    assert client.post("/api/v1/predict/mechanical", json=example()).status_code == 200


def test_api_keys_guard_the_prediction_routes_only(make_core):
    with app_with(make_core, AccessSettings(frozenset({"k1", "k2"}))) as http:
        missing = http.post("/api/v1/predict/mechanical", json=example())
        wrong = http.post("/api/v1/predict/mechanical", json=example(), headers={"X-API-Key": "nope"})
        right = http.post("/api/v1/predict/mechanical", json=example(), headers={"X-API-Key": "k2"})
        health = http.get("/api/v1/health")
    assert (missing.status_code, wrong.status_code, right.status_code, health.status_code) == (401, 401, 200, 200)
    assert missing.json()["error"]["type"] == "unauthorized"


def test_the_rate_limit_answers_429_with_retry_after_per_key(make_core):
    access = AccessSettings(frozenset({"k1", "k2"}), rate_limit_per_minute=2)
    with app_with(make_core, access) as http:
        statuses = [
            http.post("/api/v1/predict/hardness", json={"formula": "SiC"}, headers={"X-API-Key": "k1"})
            for _ in range(3)
        ]
        other_key = http.post("/api/v1/predict/hardness", json={"formula": "SiC"}, headers={"X-API-Key": "k2"})
    assert [r.status_code for r in statuses] == [200, 200, 429] and other_key.status_code == 200
    limited = statuses[-1]
    assert limited.json()["error"]["type"] == "rate_limited" and 1 <= int(limited.headers["retry-after"]) <= 60


def test_a_key_of_any_bytes_is_refused_not_a_500(make_core):
    """Issue 34: a non-ASCII X-API-Key was a TypeError in hmac.compare_digest (500, a traceback logged)."""
    with app_with(make_core, AccessSettings(frozenset({"k1"}))) as http:
        for key in ("clé".encode("latin-1"), b"\xff\xfe", "k1\u00e9".encode()):
            response = http.post("/api/v1/predict/mechanical", json=example(), headers={"X-API-Key": key})
            assert response.status_code == 401, key
            assert response.json()["error"]["type"] == "unauthorized"


def test_the_bearer_scheme_is_read_in_any_case(make_core):
    """Issue 34: RFC 9110 makes the auth scheme case-insensitive; ``bearer`` was refused."""
    core = make_core(admin_token="s3cret")
    with TestClient(create_app(lambda: core, 65536)) as http:
        for scheme in ("Bearer", "bearer", "BEARER"):
            status = http.get("/api/v1/status", headers={"Authorization": f"{scheme} s3cret"}).json()
            assert "resources" in status, scheme
        assert "resources" not in http.get("/api/v1/status", headers={"Authorization": "Basic s3cret"}).json()
