"""Shared fixtures. The BentoML model store lives in a temporary folder for the whole run, set
before anything imports bentoml, so tests never touch ~/bentoml."""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="armor-test-bentoml-")
os.environ["BENTOML_HOME"] = _HOME
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from model_registry.datagen import generate  # noqa: E402
from model_registry.train import TrainingConfig, train_family  # noqa: E402

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
