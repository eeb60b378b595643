"""BentoML's process manager (circus) listens on Unix sockets only its user can reach.

``bentoml serve`` starts a circus arbiter that supervises the workers and takes commands (list,
stop, restart, add or replace watchers) on a ZeroMQ endpoint and publishes events on another.
BentoML 1.4.40 hard-codes both as ``tcp://127.0.0.1:<free port>``
(``bentoml/_internal/utils/circus/__init__.py``, ``create_standalone_arbiter``), with no setting to
change them and no authentication: any process on the host, of any user, could stop or replace
the workers (issue 34).

``install`` replaces the arbiter classes that function builds from (it looks them up when it is
called, after the service module is imported) with subclasses that bind both endpoints to
``ipc://`` sockets in a fresh directory of mode 0700 (``tempfile.mkdtemp``), removed when the
arbiter stops: only the serving user (and root) can connect. The serve's own use of the
endpoints (its reload plugin, circusctl given the path) works as before.

The same directory holds the serve's Prometheus files (``metrics_directory``): BentoML puts every
serve's in ``$BENTOML_HOME/prometheus_multiproc_dir`` and empties it when a serve starts, so a second
``bentoml serve`` on the same BENTOML_HOME (another port, a test, ``bentoml build``'s checks) wiped
the first one's counters, which then read 0 on /metrics and /api/v1/performance. Each serve's
workers now write their own directory, removed with it when the serve stops.

The same subclass drains on SIGTERM before BentoML's stop (serving/drain.py): the process manager
is the one place that sees every worker and decides the order in which they stop.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from typing import Any

from bentoml._internal.utils import circus
from tornado import gen

from serving import workers
from serving.drain import drain, name_drain_file
from serving.log_writer import add_writer
from settings import ShutdownSettings

_ORIGINAL = "_armor_original"
PROMETHEUS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's, which BentoML sets for every watcher


def private_endpoints(
    base: type[Any], shutdown: ShutdownSettings | None = None, log_writer: ShutdownSettings | None = None
) -> type[Any]:
    """``base`` (an arbiter class) with its control and pub/sub endpoints in a private directory and
    its workers' exits logged (serving/workers.py); with ``shutdown``, its stop (SIGTERM, circus's
    ``quit``) drains first (serving/drain.py); with ``log_writer`` (the stop's settings), it runs the
    prediction log's writer process beside the API workers (serving/log_writer.py)."""

    class PrivateEndpointsArbiter(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            directory = tempfile.mkdtemp(prefix="armor-circus-")  # 0700
            kwargs |= {"endpoint": f"ipc://{directory}/control", "pubsub_endpoint": f"ipc://{directory}/events"}
            super().__init__(*args, **kwargs)
            self.control_directory = directory
            self.exit_stack.callback(shutil.rmtree, directory, ignore_errors=True)
            metrics_directory(self.watchers, directory)
            if log_writer is not None:
                add_writer(self.watchers, directory, log_writer)
            workers.watch(self.watchers)

    arbiter = PrivateEndpointsArbiter if shutdown is None else _draining(PrivateEndpointsArbiter, shutdown)
    setattr(arbiter, _ORIGINAL, base)
    return arbiter


def metrics_directory(watchers: list[Any], directory: str) -> str:
    """The workers' Prometheus files in ``directory``/prometheus (see the module's docstring)."""
    path = os.path.join(directory, "prometheus")
    os.mkdir(path)
    for watcher in watchers:
        watcher.env = {**(watcher.env or {}), PROMETHEUS_VARIABLE: path}
    return path


def _draining(base: type[Any], shutdown: ShutdownSettings) -> type[Any]:
    class DrainingArbiter(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.drain_file, self.drained = f"{self.control_directory}/draining", False
            name_drain_file(self.watchers, self.drain_file)

        @gen.coroutine
        def stop(self) -> Generator[Any, Any, None]:
            """Drain once (a second SIGTERM while draining stops at once), then BentoML's stop."""
            if not self.drained:
                self.drained = True
                yield drain(self, shutdown, self.drain_file)
            yield super().stop()

    return DrainingArbiter


def install(shutdown: ShutdownSettings | None = None, log_writer: bool = False) -> None:
    """Every arbiter BentoML creates from now on listens privately, and ``bentoml serve``'s drains on
    SIGTERM per ``shutdown`` (the threaded arbiter of ``bentoml.serve()`` in a Python process stops
    as before); with ``log_writer`` (PREDICTION_LOG on), both run the prediction log's writer
    process; idempotent."""
    writer = (shutdown or ShutdownSettings()) if log_writer else None
    for name, drains in (("Arbiter", shutdown), ("ThreadedArbiter", None)):
        current = getattr(circus, name)
        setattr(circus, name, private_endpoints(getattr(current, _ORIGINAL, current), drains, writer))
