"""runners/hop.py: rows over a Unix socket, answers matched to their calls, and the fallback
signal (None) whenever no runner socket answers."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from runners.hop import HopFailed, HopServer, SocketHop, serve_directory, socket_paths

FAMILIES = ("mechanical", "ballistic", "hardness")


def _answer(family: str, rows: np.ndarray, explain: bool, cache: bool = True) -> np.ndarray:
    """A stand-in runner: the family's index, the explain and cache flags (explain + 2 x cache)
    and each row's sum, per row."""
    if rows.shape[1] == 0:
        raise ValueError("no features")
    marker = np.full((rows.shape[0], 1), FAMILIES.index(family))
    flags = np.full_like(marker, float(explain) + 2.0 * cache)
    return np.hstack([marker, flags, rows.sum(axis=1, keepdims=True), rows])


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay under ~100 characters: a short temporary directory."""
    with tempfile.TemporaryDirectory(prefix="hop", dir="/tmp") as directory:
        yield Path(directory)


def test_socket_paths_are_one_per_runner_worker_from_index_1(short_dir: Path) -> None:
    assert socket_paths(short_dir, 2) == [short_dir / "1.sock", short_dir / "2.sock"]


def test_the_serve_directory_is_beside_the_shared_one_and_none_outside_a_serve(tmp_path: Path) -> None:
    assert serve_directory(None) is None
    directory = serve_directory(str(tmp_path / "prometheus"))
    assert directory is not None and directory.parent == tmp_path / "armor_hop"


def test_rows_go_over_and_each_caller_gets_its_own_answer(short_dir: Path) -> None:
    asyncio.run(_rows_go_over_and_each_caller_gets_its_own_answer(short_dir))


async def _rows_go_over_and_each_caller_gets_its_own_answer(short_dir: Path) -> None:
    server = HopServer(short_dir / "1.sock", FAMILIES, _answer)
    await server.start()
    hop = SocketHop([short_dir / "1.sock"], FAMILIES)
    try:
        rng = np.random.default_rng(1)
        calls = [(FAMILIES[i % 3], rng.normal(size=(1 + i % 4, 7)), bool(i % 2), i % 3 != 0) for i in range(40)]
        answers = await asyncio.gather(*(hop.predict(f, rows, explain, cache) for f, rows, explain, cache in calls))
        for (family, rows, explain, cache), answer in zip(calls, answers, strict=True):
            assert answer is not None
            np.testing.assert_array_equal(answer, _answer(family, rows, explain, cache))
            assert answer.flags.writeable
    finally:
        await hop.close()
        await server.close()
    assert not short_dir.exists()  # the socket and its (serve's) directory are gone


def test_a_runner_failure_reaches_the_caller_with_its_message(short_dir: Path) -> None:
    asyncio.run(_a_runner_failure_reaches_the_caller_with_its_message(short_dir))


async def _a_runner_failure_reaches_the_caller_with_its_message(short_dir: Path) -> None:
    server = HopServer(short_dir / "1.sock", FAMILIES, _answer)
    await server.start()
    hop = SocketHop([short_dir / "1.sock"], FAMILIES)
    try:
        with pytest.raises(HopFailed, match="ValueError: no features"):
            await hop.predict("mechanical", np.zeros((2, 0)), False)
        ok = await hop.predict("mechanical", np.ones((1, 3)), False)  # the connection survives it
        assert ok is not None and ok[0, 2] == 3.0
    finally:
        await hop.close()
        await server.close()


def test_no_socket_means_none_and_is_retried_only_after_the_pause(short_dir: Path) -> None:
    asyncio.run(_no_socket_means_none_and_is_retried_only_after_the_pause(short_dir))


async def _no_socket_means_none_and_is_retried_only_after_the_pause(short_dir: Path) -> None:
    path = short_dir / "1.sock"
    hop = SocketHop([path], FAMILIES, retry_s=0.2)
    assert await hop.predict("mechanical", np.ones((1, 3)), False) is None
    server = HopServer(path, FAMILIES, _answer)
    await server.start()
    try:
        assert await hop.predict("mechanical", np.ones((1, 3)), False) is None  # still within the pause
        await asyncio.sleep(0.25)
        assert await hop.predict("mechanical", np.ones((1, 3)), False) is not None
    finally:
        await hop.close()
        await server.close()


def test_a_runner_that_goes_away_mid_call_gives_none_then_a_restarted_one_answers(short_dir: Path) -> None:
    asyncio.run(_a_runner_that_goes_away_mid_call_gives_none_then_a_restarted_one_answers(short_dir))


async def _a_runner_that_goes_away_mid_call_gives_none_then_a_restarted_one_answers(short_dir: Path) -> None:
    path = short_dir / "1.sock"

    async def dies_holding_the_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # a call arrived; the worker is killed before it answers
        writer.transport.abort()

    dying = await asyncio.start_unix_server(dies_holding_the_call, path=str(path))
    hop = SocketHop([path], FAMILIES, retry_s=0.0)
    try:
        assert await hop.predict("mechanical", np.ones((1, 3)), False) is None
        dying.close()
        restarted = HopServer(path, FAMILIES, _answer)
        await restarted.start()
        answer = await hop.predict("mechanical", np.ones((1, 3)), True)
        assert answer is not None and answer[0, 1] == 3.0  # explain, through the cache
        await restarted.close()
    finally:
        await hop.close()


def test_calls_spread_over_runner_workers(short_dir: Path) -> None:
    asyncio.run(_calls_spread_over_runner_workers(short_dir))


async def _calls_spread_over_runner_workers(short_dir: Path) -> None:
    seen: list[str] = []

    def answering(name: str):
        def answer(family: str, rows: np.ndarray, explain: bool, cache: bool) -> np.ndarray:
            seen.append(name)
            return _answer(family, rows, explain, cache)

        return answer

    servers = [HopServer(p, FAMILIES, answering(p.name)) for p in socket_paths(short_dir, 2)]
    for server in servers:
        await server.start()
    hop = SocketHop(socket_paths(short_dir, 2), FAMILIES)
    try:
        await asyncio.gather(*(hop.predict("mechanical", np.ones((1, 3)), False) for _ in range(20)))
    finally:
        await hop.close()
        for server in servers:
            await server.close()
    assert set(seen) == {"1.sock", "2.sock"}
