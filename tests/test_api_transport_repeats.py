"""api/transport/repeats.py: exact repeats answered from the response cache before the body is parsed, and
everything else on the full path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.transport.repeats import RepeatMemo
from settings import AccessSettings

EXAMPLE = json.loads((Path(__file__).parent / "testdata" / "example_request.json").read_text())
PER_REQUEST = ("request_id", "processing_time_ms", "cached")


class PrepareCounter:
    """Counts how often a family's request is validated and normalised (the full path)."""

    def __init__(self, family):
        self.family, self.calls = family, 0

    def prepare(self, request):
        self.calls += 1
        return self.family.prepare(request)


@pytest.fixture
def counted(make_core):
    core = make_core()
    counters = {name: PrepareCounter(family) for name, family in core.flow.families.items()}
    core.flow.families = counters
    with TestClient(create_app(lambda: core, max_request_bytes=65536)) as client:
        yield client, core, counters


def _without_per_request(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in PER_REQUEST}


def test_the_memo_keeps_the_most_recently_used_entries():
    memo = RepeatMemo(max_entries=2)
    memo.remember("a", "key-a", "tag")
    memo.remember("b", "key-b", "tag")
    assert memo.recall("a") == ("key-a", "tag", b"", None, (True, False))  # a is now the most recent
    memo.remember("c", "key-c", "tag")
    assert memo.recall("b") is None and memo.recall("a") is not None and len(memo) == 2


def test_asking_whether_an_entry_is_remembered_leaves_the_lru_order_alone():
    memo = RepeatMemo(max_entries=2)
    memo.remember("a", "key-a", "tag")
    memo.remember("b", "key-b", "tag")
    assert "a" in memo and "z" not in memo  # a stays the least recent
    memo.remember("c", "key-c", "tag")
    assert "a" not in memo and "b" in memo and "c" in memo


def test_raw_keys_differ_by_path_content_type_and_every_byte():
    key = RepeatMemo.raw_key
    base = key("/api/v1/predict/mechanical", b"application/json", b'{"a": 1}')
    assert base == key("/api/v1/predict/mechanical", b"application/json", b'{"a": 1}')
    assert base != key("/api/v1/predict/ballistic", b"application/json", b'{"a": 1}')
    assert base != key("/api/v1/predict/mechanical", b"text/plain", b'{"a": 1}')
    assert base != key("/api/v1/predict/mechanical", b"application/json", b'{"a":1}')


@pytest.mark.parametrize("family", ["mechanical", "ballistic"])
def test_an_exact_repeat_is_answered_without_parsing_and_equals_the_full_answer(counted, family):
    client, _, counters = counted
    body = json.dumps(EXAMPLE).encode()
    headers = {"content-type": "application/json"}
    first = client.post(f"/api/v1/predict/{family}", content=body, headers=headers)
    second = client.post(f"/api/v1/predict/{family}", content=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert counters[family].calls == 1  # the repeat never reached validation
    assert (first.json()["cached"], second.json()["cached"]) == (False, True)
    assert _without_per_request(second.json()) == _without_per_request(first.json())
    assert second.json()["request_id"] != first.json()["request_id"]
    assert second.headers["content-type"] == first.headers["content-type"]


def test_the_same_meaning_in_other_bytes_takes_the_full_path_to_the_same_cached_answer(counted):
    client, _, counters = counted
    client.post("/api/v1/predict/mechanical", json=EXAMPLE)
    reordered = dict(reversed(list(EXAMPLE.items())))
    again = client.post("/api/v1/predict/mechanical", json=reordered)
    assert again.json()["cached"] is True and counters["mechanical"].calls == 2


def test_a_refused_request_is_refused_every_time(counted):
    client, _, counters = counted
    fibre = EXAMPLE | {"armor": EXAMPLE.get("armor", {}) | {"backing": "aramid_laminate"}}  # refused in prepare
    answers = [client.post("/api/v1/predict/ballistic", json=fibre) for _ in range(3)]
    assert [a.status_code for a in answers] == [422, 422, 422] and counters["ballistic"].calls == 3
    assert answers[2].json()["error"] == answers[0].json()["error"]
    assert answers[2].json()["request_id"] != answers[0].json()["request_id"]


def test_an_answer_that_left_the_cache_is_computed_again(counted):
    client, core, counters = counted
    client.post("/api/v1/predict/mechanical", json=EXAMPLE)
    core.response_cache.cache.local.clear()
    core.response_cache.cache.shared = None  # nothing shared either
    again = client.post("/api/v1/predict/mechanical", json=EXAMPLE)
    assert again.status_code == 200 and again.json()["cached"] is False and counters["mechanical"].calls == 2


def test_a_repeat_after_the_serving_model_changed_takes_the_full_path(counted):
    client, core, counters = counted
    client.post("/api/v1/predict/mechanical", json=EXAMPLE)
    cards = core.flow.cards
    cards._default["mechanical"] = dataclasses.replace(cards._default["mechanical"], tag="armor_mechanical:newer")
    client.post("/api/v1/predict/mechanical", json=EXAMPLE)
    assert counters["mechanical"].calls == 2


def test_pinned_versions_are_not_remembered(counted, stored_tags):
    client, _, counters = counted
    pinned = EXAMPLE | {"model_version": stored_tags["mechanical"]}
    for _ in range(2):
        client.post("/api/v1/predict/mechanical", json=pinned)
    assert counters["mechanical"].calls == 2


def test_without_a_response_cache_nothing_is_remembered(make_core):
    core = make_core(enable_response_caching=False)
    assert core.flow.repeats is None
    with TestClient(create_app(lambda: core, max_request_bytes=65536)) as client:
        answers = [client.post("/api/v1/predict/mechanical", json=EXAMPLE).json()["cached"] for _ in range(2)]
    assert answers == [False, False]


def test_a_repeat_still_needs_its_api_key(make_core):
    core = make_core()
    app = create_app(lambda: core, max_request_bytes=65536, access=AccessSettings(frozenset({"k1"})))
    with TestClient(app) as client:
        assert client.post("/api/v1/predict/mechanical", json=EXAMPLE, headers={"X-API-Key": "k1"}).status_code == 200
        assert client.post("/api/v1/predict/mechanical", json=EXAMPLE).status_code == 401


def test_a_repeat_still_meets_the_body_limit(counted):
    client, _, _ = counted
    big = EXAMPLE | {"padding": "x" * 70_000}
    assert client.post("/api/v1/predict/mechanical", json=big).status_code == 413
    assert client.post("/api/v1/predict/mechanical", json=big).status_code == 413
