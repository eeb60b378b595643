"""serving/readiness.py: /readyz's answer and its reason, bounded by the check's time."""

import asyncio

import aiohttp
import pytest

from serving.readiness import DRAINING, Readiness


def _reason(runner_ready, draining=lambda: False, check_s=0.05, heard_recently=None):
    return asyncio.run(Readiness(runner_ready, check_s, draining, heard_recently).reason())


async def _ready() -> bool:
    return True


async def _loading() -> bool:
    return False


async def _paused() -> bool:
    await asyncio.sleep(3600)  # a SIGSTOPped runner: the connection opens, no answer comes
    return True


async def _killed() -> bool:
    raise aiohttp.ClientConnectionError("connection refused")


def test_ready_when_the_runner_says_so():
    assert _reason(_ready) is None


def test_draining_is_not_ready_whatever_the_runner():
    assert _reason(_ready, draining=lambda: True) == DRAINING


@pytest.mark.parametrize(
    "runner, reason",
    [
        (_loading, "the runner's models are not loaded yet"),
        (_paused, "the runner did not answer the readiness check within 0.05 s"),
        (_killed, "the runner cannot be reached (ClientConnectionError)"),
    ],
)
def test_a_runner_that_cannot_answer_gives_the_reason(runner, reason):
    assert _reason(runner) == reason


def test_a_runner_heard_just_now_is_not_asked():
    assert _reason(_paused, heard_recently=lambda: True) is None  # busy with predictions: slow to answer /readyz
    assert _reason(_paused, heard_recently=lambda: False).startswith("the runner did not answer")
