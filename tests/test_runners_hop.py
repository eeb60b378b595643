"""runners/hop.py: rows over a Unix socket, answers matched to their calls, and the fallback
signal (None) whenever no runner socket answers."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvloop

from runners.contract import RowKind
from runners.hop import HopFailed, HopServer, SocketHop, row_kind, serve_directory, socket_paths, wire_flags

FAMILIES = ("mechanical", "ballistic", "hardness")


PLAIN = RowKind()


def _answer(family: str, rows: np.ndarray, kind: RowKind) -> np.ndarray:
    """A stand-in runner: the family's index, the kind (explain + 2 x cache + 4 x materials) and
    each row's sum, per row."""
    if rows.shape[1] == 0:
        raise ValueError("no features")
    marker = np.full((rows.shape[0], 1), FAMILIES.index(family))
    flags = np.full_like(marker, float(kind.explain) + 2.0 * kind.cache + 4.0 * kind.materials)
    return np.hstack([marker, flags, rows.sum(axis=1, keepdims=True), rows])


@contextlib.asynccontextmanager
async def running(*servers: HopServer) -> AsyncIterator[Callable[..., SocketHop]]:
    """``servers`` started; inside, ``connect(**options)`` makes a SocketHop to their sockets (an API
    worker's side). On the way out every hop, then every server, is closed (their sockets removed)."""
    hops: list[SocketHop] = []

    def connect(**options: Any) -> SocketHop:
        hops.append(SocketHop([server.path for server in servers], FAMILIES, **options))
        return hops[-1]

    for server in servers:
        await server.start()
    try:
        yield connect
    finally:
        for hop in hops:
            await hop.close()
        for server in servers:
            await server.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    """Each test on both event loops: uvicorn (so BentoML) runs uvloop, which calls a protocol's
    connection_made at another moment than asyncio does."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run_on(coroutine: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(asyncio.wait_for(coroutine, 10))  # a call never answered fails, not hangs

    return run_on


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay under ~100 characters: a short temporary directory."""
    with tempfile.TemporaryDirectory(prefix="hop", dir="/tmp") as directory:
        yield Path(directory)


def test_every_row_kind_crosses_the_wire_as_itself() -> None:
    kinds = [RowKind(e, c, m) for e in (False, True) for c in (False, True) for m in (False, True)]
    assert [row_kind(wire_flags(k)) for k in kinds] == kinds
    assert len({wire_flags(k) for k in kinds}) == 8


def test_socket_paths_are_one_per_runner_worker_from_index_1(short_dir: Path) -> None:
    assert socket_paths(short_dir, 2) == [short_dir / "1.sock", short_dir / "2.sock"]


def test_the_serve_directory_is_beside_the_shared_one_and_none_outside_a_serve(tmp_path: Path) -> None:
    assert serve_directory(None) is None
    directory = serve_directory(str(tmp_path / "prometheus"))
    assert directory is not None and directory.parent == tmp_path / "armor_hop"


def test_rows_go_over_and_each_caller_gets_its_own_answer(
    short_dir: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    run(_rows_go_over_and_each_caller_gets_its_own_answer(short_dir))


async def _rows_go_over_and_each_caller_gets_its_own_answer(short_dir: Path) -> None:
    async with running(HopServer(short_dir / "1.sock", FAMILIES, _answer)) as connect:
        hop = connect()
        rng = np.random.default_rng(1)
        calls = [
            (FAMILIES[i % 3], rng.normal(size=(1 + i % 4, 7)), RowKind(bool(i % 2), i % 3 != 0, i % 5 == 0))
            for i in range(40)
        ]
        answers = await asyncio.gather(*(hop.predict(f, rows, kind) for f, rows, kind in calls))
        for (family, rows, kind), answer in zip(calls, answers, strict=True):
            assert answer is not None
            np.testing.assert_array_equal(answer, _answer(family, rows, kind))
            assert answer.flags.writeable
    assert not short_dir.exists()  # the socket and its (serve's) directory are gone


def test_a_runner_failure_reaches_the_caller_with_its_message(
    short_dir: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    run(_a_runner_failure_reaches_the_caller_with_its_message(short_dir))


async def _a_runner_failure_reaches_the_caller_with_its_message(short_dir: Path) -> None:
    async with running(HopServer(short_dir / "1.sock", FAMILIES, _answer)) as connect:
        hop = connect()
        with pytest.raises(HopFailed, match="ValueError: no features"):
            await hop.predict("mechanical", np.zeros((2, 0)), PLAIN)
        ok = await hop.predict("mechanical", np.ones((1, 3)), PLAIN)  # the connection survives it
        assert ok is not None and ok[0, 2] == 3.0


def test_no_socket_means_none_and_is_retried_only_after_the_pause(
    short_dir: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    run(_no_socket_means_none_and_is_retried_only_after_the_pause(short_dir))


async def _no_socket_means_none_and_is_retried_only_after_the_pause(short_dir: Path) -> None:
    path = short_dir / "1.sock"
    hop = SocketHop([path], FAMILIES, retry_s=0.2)
    assert await hop.predict("mechanical", np.ones((1, 3)), PLAIN) is None
    server = HopServer(path, FAMILIES, _answer)
    await server.start()
    try:
        assert await hop.predict("mechanical", np.ones((1, 3)), PLAIN) is None  # still within the pause
        await asyncio.sleep(0.25)
        assert await hop.predict("mechanical", np.ones((1, 3)), PLAIN) is not None
    finally:
        await hop.close()
        await server.close()


def test_a_runner_that_goes_away_mid_call_gives_none_then_a_restarted_one_answers(
    short_dir: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    run(_a_runner_that_goes_away_mid_call_gives_none_then_a_restarted_one_answers(short_dir))


async def _a_runner_that_goes_away_mid_call_gives_none_then_a_restarted_one_answers(short_dir: Path) -> None:
    path = short_dir / "1.sock"

    async def dies_holding_the_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # a call arrived; the worker is killed before it answers
        writer.transport.abort()

    dying = await asyncio.start_unix_server(dies_holding_the_call, path=str(path))
    hop = SocketHop([path], FAMILIES, retry_s=0.0)
    try:
        assert await hop.predict("mechanical", np.ones((1, 3)), PLAIN) is None
        dying.close()
        restarted = HopServer(path, FAMILIES, _answer)
        await restarted.start()
        answer = await hop.predict("mechanical", np.ones((1, 3)), RowKind(explain=True))
        assert answer is not None and answer[0, 1] == 3.0  # explain, through the cache
        await restarted.close()
    finally:
        await hop.close()


def test_calls_spread_over_runner_workers(short_dir: Path, run: Callable[[Coroutine[Any, Any, None]], None]) -> None:
    run(_calls_spread_over_runner_workers(short_dir))


async def _calls_spread_over_runner_workers(short_dir: Path) -> None:
    seen: list[str] = []

    def answering(name: str):
        def answer(family: str, rows: np.ndarray, kind: RowKind) -> np.ndarray:
            seen.append(name)
            return _answer(family, rows, kind)

        return answer

    servers = [HopServer(p, FAMILIES, answering(p.name)) for p in socket_paths(short_dir, 2)]
    async with running(*servers) as connect:
        hop = connect()
        await asyncio.gather(*(hop.predict("mechanical", np.ones((1, 3)), PLAIN) for _ in range(20)))
    assert set(seen) == {"1.sock", "2.sock"}


def test_calls_that_arrive_together_from_both_api_workers_are_one_model_call(
    short_dir: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    run(_calls_that_arrive_together_are_one_model_call(short_dir))


async def _calls_that_arrive_together_are_one_model_call(short_dir: Path) -> None:
    model_calls: list[tuple[str, int]] = []

    def counted(family: str, rows: np.ndarray, kind: RowKind) -> np.ndarray:
        model_calls.append((family, rows.shape[0]))
        return _answer(family, rows, kind)

    async with running(HopServer(short_dir / "1.sock", FAMILIES, counted)) as connect:
        workers = [connect(), connect()]  # two API workers
        for hop in workers:  # connected before the calls go out
            await hop.predict("mechanical", np.ones((1, 3)), PLAIN)
        model_calls.clear()
        rng = np.random.default_rng(2)
        calls = [(workers[i % 2], FAMILIES[i % 2], rng.normal(size=(1 + i % 3, 5))) for i in range(8)]
        answers = await asyncio.gather(*(hop.predict(family, rows, PLAIN) for hop, family, rows in calls))
        assert len(model_calls) == 2
        for (_, family, rows), answer in zip(calls, answers, strict=True):
            np.testing.assert_array_equal(answer, _answer(family, rows, PLAIN))
    # written in one loop step, read in the next: one model call per family, every row in it
    rows_of = {f: sum(rows.shape[0] for _, family, rows in calls if family == f) for f in ("ballistic", "mechanical")}
    assert sorted(model_calls) == sorted(rows_of.items())


def test_a_failing_merged_call_is_answered_call_by_call(
    short_dir: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    run(_a_failing_merged_call_is_answered_call_by_call(short_dir))


async def _a_failing_merged_call_is_answered_call_by_call(short_dir: Path) -> None:
    def fails_on_nan(family: str, rows: np.ndarray, kind: RowKind) -> np.ndarray:
        if np.isnan(rows).any():
            raise ValueError("a NaN feature")
        return _answer(family, rows, kind)

    server = HopServer(short_dir / "1.sock", FAMILIES, fails_on_nan)
    async with running(server) as connect:
        hop = connect()
        await hop.predict("mechanical", np.ones((1, 3)), PLAIN)
        good, bad = np.ones((2, 3)), np.full((1, 3), np.nan)
        answers = await asyncio.gather(
            hop.predict("mechanical", good, PLAIN), hop.predict("mechanical", bad, PLAIN), return_exceptions=True
        )
    assert server.model_calls >= 3  # the merged call, then each alone
    np.testing.assert_array_equal(answers[0], _answer("mechanical", good, PLAIN))
    assert isinstance(answers[1], HopFailed) and "a NaN feature" in str(answers[1])


def test_the_request_id_crosses_the_hop_to_the_runners_log_line(
    short_dir: Path, run: Callable[[Coroutine[Any, Any, None]], None], caplog_json: Any
) -> None:
    run(_the_request_id_crosses_the_hop(short_dir))
    import json

    (line,) = [json.loads(text) for text in caplog_json.getvalue().splitlines()]
    assert line["message"] == "hop call failed" and line["request_id"] == "hop-id-7"


async def _the_request_id_crosses_the_hop(short_dir: Path) -> None:
    from monitoring.logs import REQUEST_ID

    token = REQUEST_ID.set("hop-id-7")
    try:
        async with running(HopServer(short_dir / "1.sock", FAMILIES, _answer)) as connect:
            hop = connect()
            ok = await hop.predict("ballistic", np.arange(6.0).reshape(2, 3), PLAIN)  # the rows unchanged by the id
            assert ok is not None and ok[:, 2].tolist() == [3.0, 12.0]
            with pytest.raises(HopFailed):
                await hop.predict("mechanical", np.zeros((2, 0)), PLAIN)  # the runner logs the failure
    finally:
        REQUEST_ID.reset(token)


def test_a_silent_runner_fails_the_call_and_a_busy_one_does_not(
    short_dir: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    run(_a_silent_runner_fails_the_call_and_a_busy_one_does_not(short_dir))


async def _a_silent_runner_fails_the_call_and_a_busy_one_does_not(short_dir: Path) -> None:
    from runners.hop import ANSWER, REQUEST, RunnerSilent

    path = short_dir / "1.sock"
    answer_after_s: list[float] = []  # a scripted runner: the i-th call is answered after answer_after_s[i]

    async def scripted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for delay in answer_after_s:
            ident, _, _, rows, columns, id_length = REQUEST.unpack(await reader.readexactly(REQUEST.size))
            await reader.readexactly(rows * columns * 8 + id_length)
            asyncio.get_running_loop().call_later(
                delay, writer.write, ANSWER.pack(ident, 0, 1, 1) + np.ones(1).tobytes()
            )
        await asyncio.sleep(10)

    server = await asyncio.start_unix_server(scripted, path=str(path))
    hop = SocketHop([path], FAMILIES, silence_s=0.4)
    try:
        # busy: the second call takes 0.6 s, but the runner answered the first at 0.3 s
        answer_after_s[:] = [0.3, 0.6]
        both = await asyncio.gather(*(hop.predict("mechanical", np.ones((1, 2)), PLAIN) for _ in range(2)))
        assert [a.tolist() for a in both if a is not None] == [[[1.0]], [[1.0]]]
        assert hop.heard_within(10)
        await hop.close()
        # silent: nothing comes back within 0.4 s
        answer_after_s[:] = [30.0]
        hop = SocketHop([path], FAMILIES, silence_s=0.4)
        with pytest.raises(RunnerSilent):
            await hop.predict("mechanical", np.ones((1, 2)), PLAIN)
        assert not hop.heard_within(10)  # /readyz asks the runner then (serving/readiness.py)
    finally:
        await hop.close()
        server.close()
