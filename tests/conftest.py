"""Shared fixtures. The BentoML model store lives in a temporary folder for the whole run, set
before anything imports bentoml, so tests never touch ~/bentoml."""

from __future__ import annotations

import asyncio
import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="armor-test-bentoml-")
os.environ["BENTOML_HOME"] = _HOME
os.environ.setdefault("OMP_NUM_THREADS", "1")
# the prediction log is on by default; a test that wants it gives its own database (tmp_path)
os.environ.setdefault("PREDICTION_LOG", "false")

import pytest  # noqa: E402

from model_registry.datagen import generate  # noqa: E402
from model_registry.train import TrainingConfig, train_family  # noqa: E402
from tests.requirements import summary_lines  # noqa: E402

SMALL_ROWS = 8000
SMALL_CONFIG = TrainingConfig(n_estimators=8, max_depth=12)


@pytest.fixture(scope="session")
def bentoml_home() -> str:
    return _HOME


@pytest.fixture(scope="session")
def small_data():
    """A small seeded reference table: quick to train on two cores."""
    return generate(SMALL_ROWS, seed=7)


@pytest.fixture(scope="session")
def trained(small_data):
    """Both families trained on the small table (not yet saved)."""
    batch, targets = small_data
    quiet = lambda message: None  # noqa: E731
    return {f: train_family(batch, targets, f, SMALL_CONFIG, progress=quiet) for f in ("mechanical", "ballistic")}


@pytest.fixture(scope="session")
def stored_tags(trained, bentoml_home):
    """Both small models saved into the temporary model store."""
    from model_registry import store

    return {family: store.save(model, dataset_sha256="0" * 64) for family, model in trained.items()}


@pytest.fixture(scope="session")
def hardness_tag(bentoml_home):
    """A hardness model on all measured rows, few trees and no grouped CV (a few seconds), stored."""
    from model_registry import store
    from model_registry.hardness import HardnessConfig, read_hardness_csv, train_hardness

    config = HardnessConfig(n_estimators=20, importance_rows=40, importance_repeats=1)
    trained = train_hardness(read_hardness_csv(), config, lambda message: None, evaluate=False)
    return store.save(trained, dataset_sha256="0" * 64)


@pytest.fixture(scope="session")
def runner_cores(stored_tags, hardness_tag):
    """One in-process runner core per family, serving the small stored models."""
    from monitoring.metrics import Metrics
    from runners.core import RunnerCore

    tags = stored_tags | {"hardness": hardness_tag}
    cores = {f: RunnerCore(f, tag, model_cache_max_mb=256, metrics=Metrics()) for f, tag in tags.items()}
    for core in cores.values():
        core.warm_up()
    return cores


@pytest.fixture
def make_core(runner_cores):
    """Build a ServiceCore with in-process runners and settings overrides."""
    from api.core import ServiceCore
    from runners.local import LocalRunnerClient
    from settings import load_settings

    built = []

    def build(runners=None, **overrides):
        """``runners``: fakes for some families (injected through the constructor); the others get
        the in-process runner cores."""
        settings = load_settings(prometheus_multiproc_dir=None, **overrides)
        core = ServiceCore(
            settings,
            {f: LocalRunnerClient(c) for f, c in runner_cores.items()} | (runners or {}),
            root_pid=os.getpid(),
            batch_rings={f: c.batch_ring for f, c in runner_cores.items()},
        )
        built.append(core)
        return core

    yield build
    for core in built:
        asyncio.run(core.close())


@pytest.fixture
def client(make_core):
    """An in-process HTTP client of the API routes (FastAPI TestClient) over a fresh ServiceCore."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    core = make_core()
    with TestClient(create_app(lambda: core, max_request_bytes=65536)) as test_client:
        test_client.core = core
        yield test_client


@pytest.fixture
def caplog_json():
    """Capture the service's JSON log lines (monitoring.logs) into a StringIO."""
    import io
    import logging

    from monitoring.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("armor")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per group of tests skipped for a missing system package (tests/requirements.py)."""
    reasons = [report.longrepr[2] for report in terminalreporter.stats.get("skipped", []) if report.longrepr]
    lines = summary_lines(reasons)
    if lines:
        terminalreporter.section("missing system packages (CI=true fails instead)", sep="-")
        for line in lines:
            terminalreporter.write_line(line)
