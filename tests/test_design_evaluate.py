"""design/evaluate.py: candidates through the batch path give the single routes' answers, and the
out-of-domain flag is the same whether the runner or the response cache answered."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from api.app import create_app
from design.evaluate import Evaluator
from tests.test_api_batch_flow import MATERIAL

ARMOR = {"tile_thickness": 10.0, "backing": "aluminum_6061_t6", "backing_thickness": 6.0, "threat": "7.62x51_m80"}
INSIDE = {**MATERIAL, "armor": ARMOR, "include_uncertainty": True}
# the training data hold at most 5 % of the unknown filler (model_registry/datagen.py)
OUTSIDE = {**INSIDE, "composition": {"SiC": 0.5, "other": 0.5}}


def evaluate(core, bodies):
    async def run():
        evaluator = await Evaluator.start(core, ("mechanical", "ballistic"))
        return await evaluator.evaluate(bodies), evaluator

    return asyncio.run(run())


def test_runner_and_cached_answers_agree_on_values_warnings_and_the_domain(make_core):
    core = make_core()
    fresh, first = evaluate(core, [INSIDE, OUTSIDE])
    assert [c.outside for c in fresh] == [False, True] and all(c.error is None for c in fresh)
    assert sum(run.cached for run in first.runs.values()) == 0
    with TestClient(create_app(lambda: core, 65536)) as http:
        singles = [
            {f: http.post(f"/api/v1/predict/{f}", json=body).json() for f in ("mechanical", "ballistic")}
            for body in (INSIDE, OUTSIDE)
        ]
    cached, second = evaluate(core, [INSIDE, OUTSIDE])
    assert sum(run.cached for run in second.runs.values()) == 4  # both rows of both families
    for a, b, single in zip(fresh, cached, singles, strict=True):
        assert (a.predictions, a.warnings, a.build, a.outside) == (b.predictions, b.warnings, b.build, b.outside)
        assert a.predictions == single["mechanical"]["predictions"] | single["ballistic"]["predictions"]
        assert a.build == single["ballistic"]["build"]
