"""The server a user might write instead of this service (issue 12's baseline): FastAPI and one
scikit-learn random forest in plain uvicorn, 2 workers — no featurizer, no physics, no runners, no
caches. loadtests/side_by_side.py runs it as the ``naive`` target.

The model is one ``RandomForestRegressor`` with scikit-learn's defaults (100 fully grown trees;
``n_jobs=1``, ``random_state=0``) fitted on ``data/reference_materials.csv``, the table the
service's models are trained on. It predicts the seven mechanical targets at once from the raw
columns: the ten phase fractions, the numeric processing and microstructure inputs, and the
categorical ones one-hot encoded (the armor columns are ballistic only and left out). A request is
turned into a one-row DataFrame by the same function as the training table, as a user would.

Fitting takes about 15 s on one core of the benchmark machine. The fitted forest (about 250 MB of
each worker's 440 MB at rest) is pickled into a per-user temporary folder, keyed by the CSV's
SHA-256, the rows and the trees, so the second worker and later starts load it in about a second
(delete the folder to refit).

    python -m loadtests.naive_server --port 3600

Serves ``POST /api/v1/predict/mechanical`` (the service's request body: only composition, processing
and microstructure are read, a missing input takes the catalogue's default, other fields are
ignored) answering ``{"predictions": {target: {"value": v}}}``, and ``GET /readyz``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sklearn.ensemble import RandomForestRegressor

from features.catalogue import (
    BALLISTIC_ONLY_BLOCKS,
    MECHANICAL_TARGETS,
    Input,
    categorical_inputs,
    family_numeric_inputs,
)
from features.phases import PHASES
from model_registry.dataset import file_sha256

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_CSV = ROOT / "data" / "reference_materials.csv"  # what `make models` trains the service on
ROUTE = "/api/v1/predict/mechanical"
NUMERIC = family_numeric_inputs("mechanical")
CATEGORICAL = tuple(i for i in categorical_inputs() if i.block not in BALLISTIC_ONLY_BLOCKS)
INPUTS: tuple[Input, ...] = (*NUMERIC, *CATEGORICAL)

Predictions = dict[str, dict[str, dict[str, float]]]


class PredictRequest(BaseModel):
    """The service's request body, parsed as a user would: three blocks of name -> value."""

    composition: dict[str, float]
    processing: dict[str, float | str]
    microstructure: dict[str, float | str] = Field(default_factory=dict)


def feature_names() -> list[str]:
    """The forest's columns, in order."""
    one_hot = [f"{spec.name}={level}" for spec in CATEGORICAL for level in spec.levels]
    return [*PHASES, *(spec.name for spec in NUMERIC), *one_hot]


def design_matrix(table: pd.DataFrame) -> np.ndarray:
    """Phase fractions (a phase not given is 0), numeric inputs, one-hot categoricals: one row per material."""
    phases = table.reindex(columns=list(PHASES), fill_value=0.0).to_numpy(float)
    numeric = table[[spec.name for spec in NUMERIC]].to_numpy(float)
    one_hot = [(table[spec.name] == level).to_numpy(float) for spec in CATEGORICAL for level in spec.levels]
    return np.column_stack([phases, numeric, *one_hot])


def flat_row(body: PredictRequest) -> dict[str, float | str]:
    row: dict[str, float | str] = {**body.composition, **body.processing, **body.microstructure}
    for spec in INPUTS:
        if spec.name not in row:
            if spec.default is None:
                raise HTTPException(422, f"{spec.block}.{spec.name} is required")
            row[spec.name] = spec.default
    return row


def fit_forest(csv: Path, rows: int | None, trees: int) -> RandomForestRegressor:
    """``rows``: only the first rows of the table (None: all of it)."""
    table = pd.read_csv(csv, nrows=rows)
    forest = RandomForestRegressor(n_estimators=trees, n_jobs=1, random_state=0)
    return forest.fit(design_matrix(table), table[list(MECHANICAL_TARGETS)].to_numpy(float))


def cached_forest(csv: Path, rows: int | None, trees: int, cache_dir: Path) -> RandomForestRegressor:
    """The forest pickled in ``cache_dir``, fitted first if it is not there. The workers of one
    server start together: a file lock makes the second wait for the first one's forest."""
    key = f"{file_sha256(csv)} {rows} {trees} {sklearn.__version__} {feature_names()}"
    path = cache_dir / f"forest-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pkl"
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(cache_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            fitted = fit_forest(csv, rows, trees)
            partial = path.with_suffix(".partial")
            with partial.open("wb") as handle:
                pickle.dump(fitted, handle, protocol=pickle.HIGHEST_PROTOCOL)
            partial.replace(path)
            return fitted  # not reloaded: a second copy would stay in this worker's heap
    with path.open("rb") as handle:
        forest: RandomForestRegressor = pickle.load(handle)  # our own file, in a folder only we can write
    return forest


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"armor-naive-forest-{os.getuid()}"


def build_app(
    csv: Path = REFERENCE_CSV, rows: int | None = None, trees: int = 100, cache_dir: Path | None = None
) -> FastAPI:
    forest = cached_forest(csv, rows, trees, cache_dir or default_cache_dir())
    app = FastAPI(title="naive armor forest")

    @app.post(ROUTE)
    def predict_mechanical(body: PredictRequest) -> Predictions:
        values = forest.predict(design_matrix(pd.DataFrame([flat_row(body)])))[0]
        return {"predictions": {t: {"value": float(v)} for t, v in zip(MECHANICAL_TARGETS, values, strict=True)}}

    @app.get("/readyz")
    def readyz() -> dict[str, bool]:
        return {"ready": True}  # the forest is loaded above

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3600)
    args = parser.parse_args()
    uvicorn.run(
        "loadtests.naive_server:build_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=2,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
