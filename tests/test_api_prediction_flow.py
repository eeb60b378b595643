"""api/prediction/flow.py: request -> response cache -> single flight -> features -> runner -> response."""

import asyncio

import orjson
from fastapi.testclient import TestClient

from api.app import create_app
from api.prediction.flow import Precomputed
from api.prediction.schemas import PredictionRequest
from tests.support import CountingRunner, example, request


def test_second_identical_request_is_cached(client):
    first = client.post("/api/v1/predict/mechanical", json=example()).json()
    second = client.post("/api/v1/predict/mechanical", json=example()).json()
    assert first["cached"] is False and second["cached"] is True
    assert second["predictions"] == first["predictions"] and second["request_id"] != first["request_id"]
    stats = asyncio.run(client.core.performance())["response_cache"]
    assert (stats["hits"], stats["misses"], stats["cache_size"]) == (1, 1, 1)
    assert stats["memory_usage_mb"] > 0


def test_disabled_cache_never_hits(make_core):
    core = make_core(enable_response_caching=False)
    with TestClient(create_app(lambda: core, 65536)) as client:
        bodies = [client.post("/api/v1/predict/mechanical", json=example()).json() for _ in range(2)]
    assert [b["cached"] for b in bodies] == [False, False]


def test_fifty_identical_concurrent_requests_make_one_model_call(make_core, runner_cores):
    counting = CountingRunner(runner_cores["mechanical"])
    core = make_core(runners={"mechanical": counting})

    async def fifty():
        return await asyncio.gather(*[core.flow.predict("mechanical", request()) for _ in range(50)])

    bodies = asyncio.run(fifty())
    assert counting.calls == 1
    assert len(bodies) == 50 and all(b["predictions"] == bodies[0]["predictions"] for b in bodies)
    assert core.flow.flight.shared == 49


def test_default_version_goes_to_the_batchable_endpoint(make_core, runner_cores, stored_tags):
    counting = CountingRunner(runner_cores["ballistic"])
    core = make_core(runners={"ballistic": counting})
    pinned_default = {
        **example(),
        "model_version": stored_tags["ballistic"].split(":")[1],
        "microstructure": {**example()["microstructure"], "porosity": 0.05},
    }  # not a cache hit
    for body in (example(), pinned_default):
        asyncio.run(core.flow.predict("ballistic", PredictionRequest.model_validate(body)))
    assert counting.calls == 2 and counting.versioned == 0


def test_failed_runner_call_reaches_every_waiter_and_is_not_cached(make_core, runner_cores):
    real = CountingRunner(runner_cores["mechanical"], delay_s=0)

    class Failing:
        async def predict(self, rows, version, kind):
            await asyncio.sleep(0.01)
            raise RuntimeError("runner down")

        async def card(self, version=None):
            return await real.card(version)

    core = make_core(runners={"mechanical": Failing()})

    async def five():
        return await asyncio.gather(
            *[core.flow.predict("mechanical", request()) for _ in range(5)], return_exceptions=True
        )

    results = asyncio.run(five())
    assert all(isinstance(r, RuntimeError) for r in results)
    assert asyncio.run(core.performance())["response_cache"]["cache_size"] == 0


def test_precompute_copies_what_the_shared_layer_holds_instead_of_asking_the_model(make_core, runner_cores, tmp_path):
    """Another worker's answer, in the machine's shared layer, is copied into this worker's local
    layer, uncounted: the request that follows is a local hit."""
    machine = {"machine_shared_cache": True, "machine_cache_dir": str(tmp_path)}
    other = make_core(**machine)
    counting = CountingRunner(runner_cores["mechanical"], delay_s=0)
    core = make_core(runners={"mechanical": counting}, **machine)

    async def go():
        await other.flow.predict("mechanical", request())
        other.response_cache.cache.shared.flush()  # as the event loop does FLUSH_AFTER_S later
        outcomes = [await core.flow.precompute("mechanical", request()) for _ in range(2)]
        answer = await core.flow.predict("mechanical", request())
        return outcomes, answer, await core.response_cache.stats()

    outcomes, answer, stats = asyncio.run(go())
    assert outcomes == [Precomputed.FROM_SHARED, Precomputed.HELD] and not any(outcomes)  # nothing computed
    assert counting.calls == 0 and answer["cached"] is True
    assert (stats["hits"], stats["misses"], stats["shared"]["hits"], stats["shared"]["misses"]) == (1, 0, 0, 0)


def _porous(i: int) -> PredictionRequest:
    return request(microstructure={**example()["microstructure"], "porosity": 0.01 + i / 1000})


def _answers_and_featurisations(core, concurrent: bool) -> tuple[list[dict], int]:
    """The answers and how many times the runner featurised (it gets the materials' rows)."""
    calls = []
    featurizer = core.predictor.runners["mechanical"].core.featurizer
    transform = featurizer.transform
    featurizer.transform = lambda batch: (calls.append(len(batch)), transform(batch))[1]

    async def run() -> list[dict]:
        asked = [core.flow.predict("mechanical", _porous(i)) for i in range(12)]
        return list(await asyncio.gather(*asked)) if concurrent else [await a for a in asked]

    try:
        return asyncio.run(run()), len(calls)
    finally:
        del featurizer.transform  # the shared runner core's own method again


def test_concurrent_new_materials_are_featurised_together_with_the_answers_of_one_by_one(make_core):
    together, featurised_together = _answers_and_featurisations(make_core(), concurrent=True)
    alone, featurised_alone = _answers_and_featurisations(make_core(), concurrent=False)
    assert featurised_alone == 12 and featurised_together < 4
    assert [a["predictions"] for a in together] == [a["predictions"] for a in alone]
    assert [a["warnings"] for a in together] == [a["warnings"] for a in alone]


def test_only_requests_on_the_default_model_leave_their_rows_pending(make_core, stored_tags, monkeypatch):
    core = make_core()
    pending = []  # the calls that reached the runner as material rows
    runner = core.predictor.runners["mechanical"].core  # shared with other tests: patched for this one only
    featurise = runner.predict_materials
    monkeypatch.setattr(
        runner, "predict_materials", lambda *a, **k: (pending.append("mechanical"), featurise(*a, **k))[1]
    )
    version = stored_tags["mechanical"].split(":")[1]
    pinned = asyncio.run(core.flow.predict("mechanical", request(model_version=version)))
    assert pinned["model_info"]["version"] == version and pending == []  # featurised before its call
    asyncio.run(core.flow.predict("mechanical", _porous(99)))
    assert pending == ["mechanical"]


# ---- no cross-talk (issue 34): a cached body holds only what its key determines; the asker's own
# input is echoed from the asker's request. Each pair shares a response key but not its text (the
# numbers of a material pair are equal: the runner computes from the asker's, the key from 10 digits).
PER_REQUEST = ("request_id", "processing_time_ms", "cached")


CROSS_TALK_PAIRS = [
    ("hardness", {"formula": "Zr1Zr1Zr1B2B2B2"}, {"formula": "ZrB2"}),
    ("hardness", {"formula": "Ti(B2)", "load_n": [4.9, 9.8]}, {"formula": " TiB2", "load_n": [4.9, 9.80000000000001]}),
    ("hardness", {"formula": "B"}, {"formula": "B2"}),
    (
        "mechanical",
        {**example(), "composition": {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1}},
        {**example(), "composition": {"Al2O3": 0.1, "B4C": 0.3, "SiC": 0.6, "WC": 0.0, "basis": "volume"}},
    ),
    (
        "ballistic",
        {**example(), "armor": {"tile_thickness": 10.0}},
        {**example(), "armor": {"tile_thickness": 10, "threat": "7.62x51_m80"}, "include_uncertainty": True},
    ),
]


def _own(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in PER_REQUEST}


def test_a_cached_answer_echoes_the_askers_own_input_in_every_family(make_core):
    for family, first, second in CROSS_TALK_PAIRS:
        shared, fresh = make_core(), make_core()
        with TestClient(create_app(lambda core=shared: core, 65536)) as http:
            assert http.post(f"/api/v1/predict/{family}", json=first).status_code == 200
            answered = [http.post(f"/api/v1/predict/{family}", json=second).json() for _ in range(2)]  # 2nd: a repeat
        with TestClient(create_app(lambda core=fresh: core, 65536)) as http:
            alone = http.post(f"/api/v1/predict/{family}", json=second).json()
        assert [a["cached"] for a in answered] == [True, True] and alone["cached"] is False, family
        for body in answered:
            assert _own(body) == _own(alone), (family, first, second)
        if family == "hardness":
            assert answered[0]["formula"] == second["formula"].strip()


def test_a_computed_answer_is_handed_to_the_log_as_its_columns_and_a_cached_one_as_rendered(make_core, tmp_path):
    """The writer parses nothing for an answer computed here (predlog/entry.py ``columns``); an
    answer from the cache it does not know yet comes as rendered."""
    core = make_core(prediction_log=True, database_url=f"sqlite:///{tmp_path}/log.sqlite3")
    offered = []
    core.flow.log.offer = offered.append
    computed = asyncio.run(core.flow.answer("mechanical", request()))
    asyncio.run(core.flow.answer("mechanical", request()))  # from the response cache
    first, repeat = offered
    assert isinstance(first.body, tuple) and not first.cached
    assert repeat.cached and repeat.body.startswith(b'{"predictions"')
    outputs, warnings, n_warnings = first.body
    body = orjson.loads(computed)
    assert orjson.loads(outputs)["density"][0] == body["predictions"]["density"]["value"]
    assert (orjson.loads(warnings), n_warnings) == (body["warnings"], len(body["warnings"]))
