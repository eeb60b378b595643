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

import logging
import os
from collections.abc import Callable
from typing import Any

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
