"""Graceful drain on SIGTERM, done by the process manager of ``bentoml serve``.

What BentoML 1.4.40 and circus did (issue 35): circus turns SIGTERM into ``quit``; BentoML's
``Arbiter.stop`` first removes the directory of the runner's Unix sockets (its exit stack), then
circus stops *every* watcher at once (``_stop_watchers``: ``gen.multi``), each with SIGTERM and
SIGKILL after 30 s. So the runner stopped while the API workers were still calling it, and the
listener closed with the API workers at once, before any load balancer noticed.

Here the arbiter (serving/control.py) drains first (``drain``):
1. it creates the drain file (``ShutdownSettings.drain_file``, in its private directory, named to
   the workers in their environment): every API worker's /readyz is 503 from then on
   (serving/readiness.py), while they keep accepting and serving;
2. after SHUTDOWN_GRACE_S it stops the API watcher: uvicorn closes the listener in each API
   worker and finishes the requests in flight (single, batch, NDJSON streams), with
   SHUTDOWN_TIMEOUT_S before circus kills a worker that has not finished;
3. then BentoML's own stop: the sockets' directory, the runner, the arbiter.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from tornado import gen

from settings import ShutdownSettings

logger = logging.getLogger("armor.drain")

API_WATCHER = "service"  # the name BentoML gives the API service's watcher (_bentoml_impl/server/serving.py)
DRAIN_FILE_VARIABLE = "ARMOR_DRAIN_FILE"


def draining(shutdown: ShutdownSettings) -> Callable[[], bool]:
    """Whether this instance drains (its drain file exists); never outside a serve."""
    if shutdown.drain_file is None:
        return lambda: False
    path = shutdown.drain_file
    return lambda: os.path.exists(path)


def name_drain_file(watchers: list[Any], path: str) -> None:
    """Tell every worker where the drain file will be (an environment variable of each watcher)."""
    for watcher in watchers:
        watcher.env = {**(watcher.env or {}), DRAIN_FILE_VARIABLE: path}


@gen.coroutine
def drain(arbiter: Any, shutdown: ShutdownSettings, drain_file: str) -> Generator[Any, Any, None]:
    """Steps 1 and 2 of the module's docstring, on the arbiter's loop; BentoML's stop follows."""
    Path(drain_file).touch()
    api = [watcher for watcher in arbiter.iter_watchers() if watcher.name == API_WATCHER]
    logger.info(
        "SIGTERM: draining; /readyz is 503, requests are still served for %g s",
        shutdown.grace_s,
        extra={"event": "drain", "grace_s": shutdown.grace_s, "timeout_s": shutdown.timeout_s},
    )
    yield gen.sleep(shutdown.grace_s)
    logger.info("stopping the API workers; requests in flight have %g s", shutdown.timeout_s, extra={"event": "drain"})
    for watcher in api:
        watcher.graceful_timeout = shutdown.timeout_s  # then circus kills a worker that has not finished
    yield [watcher._stop() for watcher in api]  # uvicorn: listener closed, requests in flight finished
    logger.info("API workers stopped; stopping the runner", extra={"event": "drain"})


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """This worker is killed when its parent, the arbiter, dies (Linux ``PR_SET_PDEATHSIG``).

    BentoML starts each worker in a session of its own: a signal to the serve's process group (a
    container runtime, ``kill -- -PGID``, a test's clean-up) reaches the arbiter only, and when the
    arbiter was killed outright, its workers stayed behind, one still listening (issue 35)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        logger.warning("could not ask to die with the arbiter (errno %d)", ctypes.get_errno())
    elif os.getppid() == 1:  # the arbiter died before the request: nobody will stop this worker
        os.kill(os.getpid(), signal.SIGKILL)
