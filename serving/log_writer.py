"""The prediction log's writer process (predlog/process.py) as one more watcher of ``bentoml serve``'s
process manager: circus starts it with the API workers, restarts it when it dies, and stops it
after them on a drain (serving/drain.py stops the API watcher first; BentoML's stop then stops the
rest), so what the API workers handed over on their way out is written before it stops.

Its socket is in the arbiter's private 0700 directory (serving/control.py); the API workers and
the writer are told its path in their environment (``SOCKET_VARIABLE``, read by settings.py).
"""

from __future__ import annotations

import sys
from typing import Any

from bentoml.serving import create_watcher

from serving.drain import API_WATCHER
from settings import ShutdownSettings

WATCHER = "prediction_log_writer"
SOCKET_VARIABLE = "ARMOR_PREDICTION_LOG_SOCKET"
FINAL_WRITE_S = 15.0  # beyond waiting for the API workers: the last write and the process's exit


def add_writer(watchers: list[Any], directory: str, shutdown: ShutdownSettings) -> str | None:
    """Add the writer's watcher beside the API watcher (same command environment and working
    directory) and name its socket to both; the socket's path, or None without an API watcher."""
    api = next((watcher for watcher in watchers if watcher.name == API_WATCHER), None)
    if api is None:
        return None
    path = f"{directory}/prediction-log.sock"
    api.env = {**(api.env or {}), SOCKET_VARIABLE: path}
    writer = create_watcher(
        name=WATCHER,
        cmd=sys.executable,
        args=["-m", "predlog.process"],
        working_dir=api.working_dir,
        numprocesses=1,
        use_sockets=False,
        close_child_stdin=True,
        env=dict(api.env),
    )
    # circus sends SIGTERM, then SIGKILL after this long: the writer waits SHUTDOWN_TIMEOUT_S at most
    # for API workers still connected, then writes what it holds
    writer.graceful_timeout = shutdown.timeout_s + FINAL_WRITE_S
    watchers.append(writer)
    return path
