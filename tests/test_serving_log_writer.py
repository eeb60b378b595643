"""serving/log_writer.py: the prediction log's writer as a watcher beside the API workers. Its life
under a real `bentoml serve` (started, a drain writing what was queued) is in tests/test_e2e_drain.py."""

import sys
from types import SimpleNamespace

from serving.drain import API_WATCHER
from serving.log_writer import SOCKET_VARIABLE, WATCHER, add_writer
from settings import ShutdownSettings, load_settings


def test_the_writer_runs_beside_the_api_workers_and_both_are_told_its_socket(tmp_path):
    api = SimpleNamespace(name=API_WATCHER, env={"PROMETHEUS_MULTIPROC_DIR": "/m"}, working_dir=str(tmp_path))
    runner = SimpleNamespace(name="service_armor_models", env={}, working_dir=str(tmp_path))
    watchers: list = [runner, api]
    path = add_writer(watchers, str(tmp_path), ShutdownSettings(timeout_s=30.0))
    writer = watchers[-1]
    assert (writer.name, writer.numprocesses, writer.working_dir) == (WATCHER, 1, str(tmp_path))
    assert writer.cmd.endswith(sys.executable.rsplit("/", 1)[-1]) and writer.args == ["-m", "predlog.process"]
    assert writer.env["PROMETHEUS_MULTIPROC_DIR"] == "/m" and writer.env[SOCKET_VARIABLE] == path
    assert api.env[SOCKET_VARIABLE] == path == f"{tmp_path}/prediction-log.sock" and runner.env == {}
    assert writer.graceful_timeout > 30.0  # the writer waits up to SHUTDOWN_TIMEOUT_S for the API workers
    assert load_settings(prediction_log_socket=path).prediction_log.writer_socket == path


def test_no_api_watcher_no_writer(tmp_path):
    watchers: list = [SimpleNamespace(name="service_armor_models", env={})]
    assert add_writer(watchers, str(tmp_path), ShutdownSettings()) is None and len(watchers) == 1
