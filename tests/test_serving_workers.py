"""serving/workers.py: a worker's exit and its restart in the log, with the cause."""

import json
import logging
import signal
from types import SimpleNamespace

import pytest

from serving.workers import exit_cause, reaped, spawned, watch


class Watcher(SimpleNamespace):
    def __init__(self, status: str = "active", numprocesses: int = 1):
        super().__init__(name="service_armor_models", numprocesses=numprocesses, hooks={}, status=status)

    def is_stopping(self) -> bool:
        return self.status == "stopping"

    def is_stopped(self) -> bool:
        return self.status == "stopped"


@pytest.mark.parametrize(
    "code, cause",
    [(-signal.SIGKILL, "killed by SIGKILL"), (1, "exit code 1"), (0, "exit code 0"), (None, "exit status unknown")],
)
def test_exit_cause_names_the_signal_or_the_code(code, cause):
    assert exit_cause(code) == cause


def _lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_unexpected_death_is_an_error_and_its_replacement_a_warning(caplog_json):
    watcher, arbiter = Watcher(), SimpleNamespace(_stopping=False)
    assert spawned(watcher, arbiter, "after_spawn", pid=10)  # the first start: no line
    assert reaped(watcher, arbiter, "after_reap", process_pid=10, exit_code=-9, time=0.0)
    assert spawned(watcher, arbiter, "after_spawn", pid=11)
    lines = _lines(caplog_json)
    events = [(line["level"], line["event"]) for line in lines]
    assert events == [("ERROR", "worker_exit"), ("WARNING", "worker_restart")]
    assert lines[0]["cause"] == "killed by SIGKILL" and lines[0]["pid"] == 10 and lines[0]["expected"] is False
    assert lines[1]["pid"] == 11 and lines[1]["watcher"] == "service_armor_models"


@pytest.mark.parametrize("watcher, stopping", [(Watcher("stopping"), False), (Watcher(), True)])
def test_exits_of_a_stop_are_info(caplog_json, watcher, stopping):
    reaped(watcher, SimpleNamespace(_stopping=stopping), "after_reap", process_pid=12, exit_code=-15)
    (line,) = _lines(caplog_json)
    assert line["level"] == "INFO" and line["expected"] is True and line["cause"] == "killed by SIGTERM"


def test_watch_sets_both_hooks():
    watcher = Watcher()
    watch([watcher])
    assert watcher.hooks == {"after_reap": reaped, "after_spawn": spawned}


def test_bentomls_and_uvicorns_handlers_write_the_services_json(capsys):
    from monitoring.logs import REQUEST_ID, JsonFormatter, adopt_foreign_lines

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))  # as BentoML's text format
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.addHandler(handler)
    try:
        adopt_foreign_lines()
        assert isinstance(handler.formatter, JsonFormatter)
        token = REQUEST_ID.set("r-9")
        uvicorn.warning("Invalid HTTP request received.")
        REQUEST_ID.reset(token)
    finally:
        uvicorn.removeHandler(handler)
    line = json.loads(capsys.readouterr().err.splitlines()[-1])
    assert line["logger"] == "uvicorn.error" and line["level"] == "WARNING" and line["request_id"] == "r-9"
