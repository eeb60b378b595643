"""End-to-end: hostile input against a real `bentoml serve` (issue 34). Status codes only: the
timings (refused within a fraction of a second, a normal prediction meanwhile not held up) are
printed by loadtests/hostile_bench.py.

Two serves: ``served`` (2 API workers, the default TRUSTED_PROXIES: none) for the limits that
must hold across workers and against a forged X-Forwarded-For, and ``behind_proxy``
(TRUSTED_PROXIES=127.0.0.1, as behind HAProxy on the same host) where each forwarded client has
its own count; the hostile bodies go there, each from a client address of its own.
"""

from __future__ import annotations

import httpx
import psutil
import pytest

from loadtests.hostile_bench import HOSTILE
from tests.support import BentoServer

pytestmark = pytest.mark.e2e
LIMIT = 6


@pytest.fixture(scope="module")
def served(stored_tags, hardness_tag, bentoml_home):
    env = {"BENTOML_HOME": bentoml_home, "API_WORKERS": "2", "PREDICTION_WORKERS": "1"}
    server = BentoServer(env | {"RATE_LIMIT_PER_MINUTE": str(LIMIT)})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def behind_proxy(stored_tags, hardness_tag, bentoml_home):
    env = {"BENTOML_HOME": bentoml_home, "API_WORKERS": "1", "PREDICTION_WORKERS": "1"}
    server = BentoServer(env | {"RATE_LIMIT_PER_MINUTE": str(LIMIT), "TRUSTED_PROXIES": "127.0.0.1"})
    server.start()
    yield server
    server.stop()


def hardness(url: str, forwarded_for: str) -> int:
    """One request on a new connection (the two workers share the connections between them)."""
    headers = {"X-Forwarded-For": forwarded_for, "Forwarded": f"for={forwarded_for}"}
    response = httpx.post(f"{url}/api/v1/predict/hardness", json={"formula": "SiC"}, headers=headers, timeout=30)
    return response.status_code


def test_the_limit_counts_both_workers_and_believes_no_forwarded_header(served):
    """Was: 60 of 60 requests with a rotating X-Forwarded-For passed a limit of 20 (uvicorn trusts the
    header from 127.0.0.1), and each worker kept its own count."""
    statuses = [hardness(served.url, f"203.0.113.{i}") for i in range(2 * LIMIT)]
    assert statuses == [200] * LIMIT + [429] * LIMIT


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(behind_proxy):
    rotating = [hardness(behind_proxy.url, f"198.51.100.{i}") for i in range(2 * LIMIT)]
    one = [hardness(behind_proxy.url, "198.51.100.200") for _ in range(LIMIT + 1)]
    assert rotating == [200] * (2 * LIMIT) and one == [200] * LIMIT + [429]


STATUSES = (422, 413, 413, 200)


@pytest.mark.parametrize("hostile, status", list(zip(HOSTILE, STATUSES, strict=True)), ids=lambda h: str(h)[:20])
def test_hostile_batch_bodies_are_refused(behind_proxy, hostile, status):
    """Was: 152 s for a 100,000-column header (422), 7-11 s for a 16 KB gzip of 16 MB of newlines
    (200), 1.4-2.7 s for 5.5 M {} (413), each holding the worker's event loop. The same newlines sent
    plain are answered (one material; the blank lines are skipped)."""
    headers = hostile.headers() | {"X-Forwarded-For": f"192.0.2.{HOSTILE.index(hostile)}"}
    response = httpx.post(
        f"{behind_proxy.url}/api/v1/predict/mechanical/batch", content=hostile.body(), headers=headers, timeout=120
    )
    assert response.status_code == status, response.text[:300]
    answer = response.json()
    assert answer["summary"]["predicted"] == 1 if status == 200 else answer["error"]["status"] == status


def test_deep_json_on_the_batch_route_is_a_400(behind_proxy):
    """Was a 500 (RecursionError)."""
    deep = b'{"materials": [' + b"[" * 10_000 + b"]" * 10_000 + b"]}"
    headers = {"content-type": "application/json", "X-Forwarded-For": "192.0.2.100"}
    response = httpx.post(f"{behind_proxy.url}/api/v1/predict/ballistic/batch", content=deep, headers=headers)
    assert response.status_code == 400 and "nested too deep" in response.json()["error"]["message"]


def test_an_unknown_path_gets_the_json_404(served):
    for path in ("/nope", "/api/v1/nope", "/static_content/nope.js"):
        response = httpx.get(f"{served.url}{path}")
        assert response.status_code == 404 and response.headers["content-type"] == "application/json", path
        assert response.json()["error"]["type"] == "not_found"
    assert httpx.get(f"{served.url}/docs.json").status_code == 200


def test_oversized_heads_get_431(served):
    big = httpx.get(f"{served.url}/health", headers={"X-Big": "a" * 40_000})
    many = httpx.get(f"{served.url}/health", headers={f"X-H{i}": "v" for i in range(150)})
    assert (big.status_code, many.status_code) == (431, 431)
    assert big.json()["error"]["type"] == "headers_too_large"


def test_the_process_manager_listens_on_no_tcp_port(served):
    """Was: circus' control and pub/sub endpoints on two 127.0.0.1 TCP ports, unauthenticated."""
    assert served.process is not None
    root = psutil.Process(served.process.pid)
    listening = {
        c.laddr.port
        for p in [root, *root.children(recursive=True)]
        for c in p.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {served.port}


def test_a_cached_hardness_answer_echoes_the_askers_formula(behind_proxy):
    """Was: four requests for ZrB2 answered with "formula": "Zr1Zr1Zr1B2B2B2" and cached: true."""
    answers = [
        httpx.post(
            f"{behind_proxy.url}/api/v1/predict/hardness",
            json={"formula": formula},
            headers={"X-Forwarded-For": f"192.0.2.{200 + i}"},
            timeout=30,
        ).json()
        for i, formula in enumerate(("Zr1Zr1Zr1B2B2B2", "ZrB2", "ZrB2"))
    ]
    assert [a["formula"] for a in answers] == ["Zr1Zr1Zr1B2B2B2", "ZrB2", "ZrB2"]
    assert answers[2]["cached"] is True and answers[2]["predictions"] == answers[0]["predictions"]
