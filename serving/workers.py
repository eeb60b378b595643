"""Worker deaths and restarts in the log, with their cause.

circus reaps a worker that died and starts another, and says so only at INFO on its ``circus``
logger, which BentoML's server logging keeps at WARNING: a runner worker killed by the kernel's
OOM killer left no line at all (issue 35). ``watch`` gives each watcher circus's ``after_reap`` and
``after_spawn`` hooks: an unexpected exit is an ERROR line naming the exit code or the signal, its
replacement a WARNING line; the exits of a stop (SIGTERM, the drain) are INFO lines.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

logger = logging.getLogger("armor.workers")

_SPAWNED = "_armor_spawned"  # processes a watcher has started (more than numprocesses: restarts)


def exit_cause(exit_code: int | None) -> str:
    """``exit code 1``, ``killed by SIGKILL`` (circus gives a signal as its negative number)."""
    if exit_code is None:
        return "exit status unknown"
    if exit_code < 0:
        try:
            return f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    return f"exit code {exit_code}"


def _stopping(watcher: Any, arbiter: Any) -> bool:
    return bool(getattr(arbiter, "_stopping", False)) or watcher.is_stopping() or watcher.is_stopped()


def reaped(watcher: Any, arbiter: Any, hook_name: str, process_pid: int, exit_code: int | None, **_: Any) -> bool:
    """circus's ``after_reap`` hook."""
    expected = _stopping(watcher, arbiter)
    cause = exit_cause(exit_code)
    logger.log(
        logging.INFO if expected else logging.ERROR,
        "%s worker %d exited (%s)%s",
        watcher.name,
        process_pid,
        cause,
        "" if expected else "; circus starts another",
        extra={
            "event": "worker_exit",
            "watcher": watcher.name,
            "pid": process_pid,
            "exit_code": exit_code,
            "cause": cause,
            "expected": expected,
        },
    )
    return True


def spawned(watcher: Any, arbiter: Any, hook_name: str, pid: int, **_: Any) -> bool:
    """circus's ``after_spawn`` hook; True: the spawn stands."""
    count = getattr(watcher, _SPAWNED, 0) + 1
    setattr(watcher, _SPAWNED, count)
    if count > watcher.numprocesses:
        logger.warning(
            "%s worker restarted as %d",
            watcher.name,
            pid,
            extra={"event": "worker_restart", "watcher": watcher.name, "pid": pid},
        )
    return True


def watch(watchers: list[Any]) -> None:
    """Log the exits and restarts of every watcher's workers."""
    for watcher in watchers:
        watcher.hooks["after_reap"] = reaped
        watcher.hooks["after_spawn"] = spawned
