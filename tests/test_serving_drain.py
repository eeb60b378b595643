"""serving/drain.py: the drain file the workers read, and workers that die with their arbiter.
The drain itself (SIGTERM under load) is tested end to end in tests/test_e2e_drain.py."""

import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import psutil
import pytest

from serving.drain import DRAIN_FILE_VARIABLE, draining, name_drain_file
from settings import ShutdownSettings, load_settings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_draining_once_the_file_exists(tmp_path):
    path = tmp_path / "draining"
    is_draining = draining(ShutdownSettings(drain_file=str(path)))
    assert not is_draining()
    path.touch()
    assert is_draining()


def test_never_draining_outside_a_serve():
    assert not draining(ShutdownSettings(drain_file=None))()


def test_every_watcher_is_told_the_drain_file_and_settings_read_it(tmp_path):
    watchers = [SimpleNamespace(env=None), SimpleNamespace(env={"KEEP": "1"})]
    name_drain_file(watchers, str(tmp_path / "draining"))
    assert watchers[1].env == {"KEEP": "1", DRAIN_FILE_VARIABLE: str(tmp_path / "draining")}
    assert load_settings(**{"drain_file": watchers[0].env[DRAIN_FILE_VARIABLE]}).shutdown.drain_file == str(
        tmp_path / "draining"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_when_its_arbiter_is_killed():
    worker = (
        "import time; from serving.drain import die_with_parent; die_with_parent();"
        "print('ready', flush=True); time.sleep(60)"
    )
    arbiter = (
        "import subprocess, sys, time;"
        f"child = subprocess.Popen([sys.executable, '-c', {worker!r}], start_new_session=True);"
        "print(child.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", arbiter], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": REPO}
    )
    child = psutil.Process(int(parent.stdout.readline()))
    assert parent.stdout.readline().strip() == "ready"  # the child has asked (its stdout is the parent's)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    child.wait(timeout=10)  # psutil.TimeoutExpired when it outlives its parent
    assert not child.is_running()
