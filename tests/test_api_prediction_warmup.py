"""api/prediction/warmup.py: the predictive warm-up from a real prediction log (SQLite), the model
change that restarts it, and the sweep prefetch."""

from __future__ import annotations

import asyncio

import pytest

from api.prediction import keys
from api.prediction.schemas import HardnessRequest
from api.prediction.warmup import next_points, request_of
from tests.support import CountingRunner, example, request

LOG = {"prediction_log": True}


def porosity(value: float):
    return request(microstructure={**example()["microstructure"], "porosity": value})


def test_a_logged_canonical_form_gives_back_the_same_request_key():
    for family in ("mechanical", "ballistic"):
        original = porosity(0.031)
        canonical = keys.canonical_material(original, family)
        again = request_of(
            family, canonical, original.model_dump(include={"include_uncertainty", "include_feature_importance"})
        )
        assert keys.response_key(family, keys.canonical_material(again, family), "t", again) == keys.response_key(
            family, canonical, "t", original
        )
    assert request_of("hardness", {"formula": "B0.8C0.2", "loads": [0.49, 9.8]}) == HardnessRequest(
        formula="B0.8C0.2", load_n=[0.49, 9.8]
    )
    assert request_of("mechanical", {"composition": {"Unobtainium": 1.0}}) is None


def test_after_a_restart_the_most_requested_materials_are_cached_before_they_are_asked(make_core, tmp_path):
    url = f"sqlite:///{tmp_path}/log.sqlite3"
    yesterday = make_core(database_url=url, **LOG)
    popular, rare = porosity(0.01), porosity(0.05)

    async def serve_yesterday():
        for asked in [popular] * 3 + [rare, porosity(0.02)]:
            await yesterday.flow.predict("mechanical", asked)
        await yesterday.flow.predict("hardness", HardnessRequest(formula="TiB2"))
        await yesterday.prediction_log.close()

    asyncio.run(serve_yesterday())
    restarted = make_core(database_url=url, predictive_warmup_top=2, **LOG)

    async def restart():
        report = await restarted.warmer.warm("test")
        answers = [await restarted.flow.predict("mechanical", asked) for asked in (popular, rare)]
        await restarted.prediction_log.close()
        return report, [a["cached"] for a in answers]

    report, cached = asyncio.run(restart())
    assert (report.materials, report.computed, report.failed, report.finished) == (2, 2, 0, True)
    assert cached == [True, False]  # the top two: the popular material and one of the others


def test_a_restarted_worker_copies_what_the_shared_layer_holds_instead_of_computing_it(
    make_core, runner_cores, tmp_path
):
    """The shared layer (here the machine's SQLite file; Redis across instances) outlives the
    worker: its answers are copied into the new worker's local layer, and no model is asked."""
    shared = {"machine_shared_cache": True, "machine_cache_dir": str(tmp_path)}
    url = f"sqlite:///{tmp_path}/log.sqlite3"
    yesterday = make_core(database_url=url, **shared, **LOG)
    popular = porosity(0.01)

    async def serve_yesterday():
        await yesterday.flow.predict("mechanical", popular)
        await yesterday.prediction_log.close()
        yesterday.response_cache.cache.shared.flush()  # as the event loop does FLUSH_AFTER_S later

    asyncio.run(serve_yesterday())
    counting = CountingRunner(runner_cores["mechanical"], delay_s=0)
    restarted = make_core(database_url=url, runners={"mechanical": counting}, **shared, **LOG)

    async def restart():
        report = await restarted.warmer.warm("test")
        answer = await restarted.flow.predict("mechanical", popular)
        figures = await restarted.performance()
        await restarted.prediction_log.close()
        return report, answer, figures

    report, answer, figures = asyncio.run(restart())
    assert (report.materials, report.from_shared, report.computed, report.already_cached) == (1, 1, 0, 0)
    assert counting.calls == 0 and answer["cached"] is True
    assert figures["prediction_log"]["warmup_here"]["from_shared"] == 1
    cache = asyncio.run(restarted.response_cache.stats())
    assert (cache["hits"], cache["shared"]["hits"], cache["shared"]["misses"]) == (1, 0, 0)  # a local hit


def test_start_up_waits_no_longer_than_told_and_the_warm_up_goes_on(make_core, tmp_path):
    core = make_core(database_url=f"sqlite:///{tmp_path}/log.sqlite3", predictive_warmup_ready_wait_s=0, **LOG)

    async def go():
        await core.flow.predict("mechanical", porosity(0.01))
        await core.prediction_log.flush()
        await core.warmer.start_up()
        waited_for = core.warmer._task.done()
        report = await core.warmer._task
        await core.prediction_log.close()
        return waited_for, report

    waited_for, report = asyncio.run(go())
    assert waited_for is False and report.finished and report.already_cached == 1


def test_a_new_default_model_starts_a_warm_up_for_its_family(make_core, tmp_path):
    core = make_core(database_url=f"sqlite:///{tmp_path}/log.sqlite3", **LOG)

    async def go():
        core.warmer.default_changed("mechanical", "armor_mechanical:a")  # learnt: nothing to warm
        first = core.warmer._task
        core.warmer.default_changed("mechanical", "armor_mechanical:b")
        report = await core.warmer._task
        await core.prediction_log.close()
        return first, report

    first, report = asyncio.run(go())
    assert first is None and report.reason == "mechanical model armor_mechanical:b" and report.finished


def test_only_an_even_walk_of_one_input_has_next_points():
    def material(porosity: float, grain: float = 10.0) -> dict:
        return {
            "composition": {"SiC": 1.0},
            "microstructure": {"porosity": porosity},
            "processing": {"grain_size": grain},
        }

    walk = [material(0.01), material(0.02), material(0.03)]
    assert [m["microstructure"]["porosity"] for m in next_points(walk, 2)] == pytest.approx([0.04, 0.05])
    assert next_points([material(0.01), material(0.02), material(0.04)], 2) == []  # uneven
    assert next_points([material(0.01), material(0.02), material(0.03, 12.0)], 2) == []  # two inputs
    assert next_points([material(0.01), material(0.01), material(0.01)], 2) == []  # no step


def test_a_sweep_finds_its_next_points_cached(make_core):
    core = make_core(sweep_prefetch_points=2)

    async def go():
        for value in (0.01, 0.02, 0.03):
            await core.flow.predict("mechanical", porosity(value))
        await core.sweeps._task
        prefetched = core.sweeps.prefetched
        return prefetched, [(await core.flow.predict("mechanical", porosity(v)))["cached"] for v in (0.04, 0.05)]

    assert asyncio.run(go()) == (2, [True, True])


def test_a_sweep_point_the_shared_layer_holds_is_copied_not_counted_as_prefetched(make_core, runner_cores, tmp_path):
    shared = {"machine_shared_cache": True, "machine_cache_dir": str(tmp_path)}
    other = make_core(**shared)
    counting = CountingRunner(runner_cores["mechanical"], delay_s=0)
    core = make_core(runners={"mechanical": counting}, sweep_prefetch_points=2, **shared)

    async def go():
        for value in (0.04, 0.05):
            await other.flow.predict("mechanical", porosity(value))
        other.response_cache.cache.shared.flush()
        for value in (0.01, 0.02, 0.03):
            await core.flow.predict("mechanical", porosity(value))
        await core.sweeps._task
        return (core.sweeps.prefetched, core.sweeps.copied), [
            (await core.flow.predict("mechanical", porosity(v)))["cached"] for v in (0.04, 0.05)
        ]

    assert asyncio.run(go()) == ((0, 2), [True, True]) and counting.calls == 3  # only the walk's own three


def test_without_the_prefetch_a_sweep_finds_nothing_cached(make_core):
    core = make_core(sweep_prefetch_points=0)

    async def go():
        for value in (0.01, 0.02, 0.03):
            await core.flow.predict("mechanical", porosity(value))
        return (await core.flow.predict("mechanical", porosity(0.04)))["cached"]

    assert core.sweeps is None and asyncio.run(go()) is False


def test_the_warm_up_waits_for_a_runner_that_is_not_usable_yet(make_core, runner_cores, tmp_path):
    """Under bentoml serve the runner's client raised AttributeError during the start-up hook: the
    warm-up asks again until it answers, then computes."""
    from runners.local import LocalRunnerClient

    class NotYet(LocalRunnerClient):
        refusals = 2

        async def card(self, version=None):
            if NotYet.refusals:
                NotYet.refusals -= 1
                raise AttributeError("'AsyncClient' object has no attribute 'card'")
            return await super().card(version)

    url = f"sqlite:///{tmp_path}/log.sqlite3"
    yesterday = make_core(database_url=url, **LOG)

    async def serve_yesterday():
        await yesterday.flow.predict("mechanical", porosity(0.01))
        await yesterday.prediction_log.close()

    asyncio.run(serve_yesterday())
    core = make_core(database_url=url, runners={"mechanical": NotYet(runner_cores["mechanical"])}, **LOG)

    async def go():
        report = await core.warmer.warm("test")
        await core.prediction_log.close()
        return report

    report = asyncio.run(go())
    assert NotYet.refusals == 0 and (report.computed, report.failed, report.finished) == (1, 0, True)
