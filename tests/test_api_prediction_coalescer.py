"""api/prediction/coalescer.py: concurrent rows of one kind go to the runner as one call."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from api.prediction.coalescer import Coalescer
from runners.contract import RowKind


class Runner:
    """Echoes each row's first number times ten; records the rows of every call."""

    def __init__(self, delay_s: float = 0.01, fail: bool = False):
        self.delay_s, self.fail = delay_s, fail
        self.calls: list[tuple[str, int, str | None, bool]] = []
        self.kinds: list[RowKind] = []  # materials: the call carried deferred rows (as materialize gave them)

    async def __call__(self, family: str, rows: np.ndarray, version: str | None, kind: RowKind) -> np.ndarray:
        self.calls.append((family, rows.shape[0], version, kind.explain))
        self.kinds.append(kind)
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise ConnectionError("runner down")
        return rows[:, :1] * 10


def row(i: int) -> np.ndarray:
    return np.array([[float(i), 0.0]])


async def many(
    coalescer: Coalescer, n: int, start: int = 0, version: str | None = None, explain: bool = False
) -> list[np.ndarray]:
    calls = [coalescer.predict("mechanical", row(i), version, explain) for i in range(start, start + n)]
    return list(await asyncio.gather(*calls))


def test_rows_arriving_while_a_call_is_on_the_wire_go_together_each_getting_its_own_answer():
    runner = Runner()
    coalescer = Coalescer(runner, max_rows=64)

    async def first_then_nine() -> list[np.ndarray]:
        first = asyncio.create_task(coalescer.predict("mechanical", row(0), None, False))
        await asyncio.sleep(0.001)  # the first call is on the wire
        return [await first, *await many(coalescer, 9, start=1)]

    answers = asyncio.run(first_then_nine())
    assert [a.tolist() for a in answers] == [[[10.0 * i]] for i in range(10)]
    assert [c[1] for c in runner.calls] == [1, 9]
    assert coalescer.calls == 2 and coalescer.rows == 10


def test_rows_of_one_moment_go_in_one_call():
    runner = Runner()
    coalescer = Coalescer(runner, max_rows=64)
    asyncio.run(many(coalescer, 10))
    assert [c[1] for c in runner.calls] == [10]


def test_a_lone_row_waits_for_nothing():
    runner = Runner(delay_s=0)
    coalescer = Coalescer(runner, max_rows=64)
    assert asyncio.run(coalescer.predict("mechanical", row(3), None, False)).tolist() == [[30.0]]
    assert [c[1] for c in runner.calls] == [1]


def test_no_call_carries_more_than_max_rows():
    runner = Runner()
    coalescer = Coalescer(runner, max_rows=4)
    answers = asyncio.run(many(coalescer, 11))
    assert [a[0, 0] for a in answers] == [10.0 * i for i in range(11)]
    assert max(c[1] for c in runner.calls) <= 4 and sum(c[1] for c in runner.calls) == 11


def test_kinds_never_share_a_call():
    runner = Runner()
    coalescer = Coalescer(runner, max_rows=64)

    async def mixed() -> None:
        await asyncio.gather(many(coalescer, 3), many(coalescer, 3, explain=True), many(coalescer, 3, version="v1"))

    asyncio.run(mixed())
    kinds = {(c[0], c[2], c[3]) for c in runner.calls}
    assert kinds == {("mechanical", None, False), ("mechanical", None, True), ("mechanical", "v1", False)}


def test_a_failed_call_reaches_every_caller_of_it_and_the_next_call_still_goes():
    runner = Runner(fail=True)
    coalescer = Coalescer(runner, max_rows=64)

    async def failing() -> list[object]:
        return await asyncio.gather(
            *[coalescer.predict("mechanical", row(i), None, False) for i in range(5)], return_exceptions=True
        )

    assert all(isinstance(r, ConnectionError) for r in asyncio.run(failing()))
    runner.fail = False
    assert asyncio.run(coalescer.predict("mechanical", row(2), None, False)).tolist() == [[20.0]]


def test_a_caller_that_gives_up_does_not_cancel_the_call_of_the_others():
    runner = Runner(delay_s=0.05)
    coalescer = Coalescer(runner, max_rows=64)

    async def one_gives_up() -> list[np.ndarray]:
        leaving = asyncio.create_task(coalescer.predict("mechanical", row(1), None, False))
        staying = asyncio.create_task(coalescer.predict("mechanical", row(2), None, False))
        await asyncio.sleep(0.01)
        leaving.cancel()
        return [await staying]

    assert [a.tolist() for a in asyncio.run(one_gives_up())] == [[[20.0]]]


@pytest.mark.parametrize("in_flight", [1, 2])
def test_at_most_max_in_flight_calls_of_a_kind_are_on_the_wire(in_flight):
    on_wire, peak = 0, 0

    async def runner(family: str, rows: np.ndarray, version: str | None, kind: RowKind) -> np.ndarray:
        nonlocal on_wire, peak
        on_wire += 1
        peak = max(peak, on_wire)
        await asyncio.sleep(0.01)
        on_wire -= 1
        return rows[:, :1]

    coalescer = Coalescer(runner, max_rows=2, max_in_flight=in_flight)
    asyncio.run(many(coalescer, 20))
    assert peak == in_flight


def test_direct_calls_go_out_at_once_side_by_side_and_are_counted():
    runner = Runner()
    coalescer = Coalescer(runner, max_rows=64)

    async def direct_while_a_lane_call_is_on_the_wire() -> list[np.ndarray]:
        lane = asyncio.create_task(coalescer.predict("mechanical", row(0), None, False))
        await asyncio.sleep(0.001)
        rows = [np.vstack([row(i), row(i + 1)]) for i in (1, 3)]
        chunks = [coalescer.direct("mechanical", r, None, RowKind(explain=True, cache=False)) for r in rows]
        return [await lane, *await asyncio.gather(*chunks)]

    answers = asyncio.run(direct_while_a_lane_call_is_on_the_wire())
    assert [a[:, 0].tolist() for a in answers] == [[0.0], [10.0, 20.0], [30.0, 40.0]]
    assert [rows for _, rows, _, _ in runner.calls] == [1, 2, 2]  # not stacked, not held behind the lane
    assert runner.kinds == [RowKind(), RowKind(explain=True, cache=False), RowKind(explain=True, cache=False)]
    assert (coalescer.calls, coalescer.rows) == (3, 5)


class Later:
    """Deferred rows: row(i), computed by ``materialize`` when their call goes out."""

    size = 1

    def __init__(self, i: int):
        self.i = i


def test_deferred_rows_waiting_behind_a_call_are_encoded_together_in_order_never_with_computed_rows():
    """Deferred rows go out as what ``materialize`` makes of them (the service: material rows), so
    they have a lane of their own, and their calls say so."""
    runner, computed = Runner(), []

    def materialize(family: str, deferred: list[Later]) -> list[np.ndarray]:
        computed.append([d.i for d in deferred])
        return [row(d.i) for d in deferred]

    coalescer = Coalescer(runner, max_rows=64, materialize=materialize)

    async def first_then_mixed() -> list[np.ndarray]:
        first = asyncio.create_task(coalescer.predict("mechanical", Later(0), None, False))
        await asyncio.sleep(0.001)  # the first call is on the wire
        rest = [coalescer.predict("mechanical", Later(i) if i % 2 else row(i), None, False) for i in range(1, 8)]
        return [await first, *await asyncio.gather(*rest)]

    answers = asyncio.run(first_then_mixed())
    assert [a.tolist() for a in answers] == [[[10.0 * i]] for i in range(8)]
    assert computed == [[0], [1, 3, 5, 7]]
    sizes = {m: [c[1] for c, k in zip(runner.calls, runner.kinds, strict=True) if k.materials == m] for m in (1, 0)}
    assert sizes == {1: [1, 4], 0: [3]}  # rows 1, 3, 5, 7 behind row 0; rows 2, 4, 6 (of one moment) apart


def test_a_deferred_row_that_cannot_be_computed_fails_its_caller_only():
    runner = Runner()

    def materialize(family: str, deferred: list[Later]) -> list[np.ndarray]:
        if any(d.i == 2 for d in deferred):
            raise ValueError("row 2 cannot be featurised")
        return [row(d.i) for d in deferred]

    coalescer = Coalescer(runner, max_rows=64, materialize=materialize)

    async def together() -> list[np.ndarray | BaseException]:
        calls = [coalescer.predict("mechanical", Later(i), None, False) for i in range(4)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    answers = asyncio.run(together())
    assert isinstance(answers[2], ValueError)
    assert [a.tolist() for i, a in enumerate(answers) if i != 2] == [[[0.0]], [[10.0]], [[30.0]]]  # type: ignore[union-attr]
    assert [c[1] for c in runner.calls] == [3] and [k.materials for k in runner.kinds] == [True]


def test_deferred_rows_without_a_way_to_compute_them_are_refused():
    coalescer = Coalescer(Runner(), max_rows=64)
    with pytest.raises(TypeError):
        asyncio.run(coalescer.predict("mechanical", Later(0), None, False))
