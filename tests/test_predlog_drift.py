"""predlog/drift.py: the KS distance per input against a real training table (written by
model_registry.dataset), only when its SHA-256 is the model's; and GET /api/v1/drift."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson

from model_registry.dataset import file_sha256, write_csv
from monitoring.metrics import Metrics
from predlog.drift import DriftReporter, family_report, load_reference
from predlog.entry import LoggedRow, split
from predlog.sqlite import SQLiteStore
from tests.support import example
from tests.test_api_transport_log_routes import logged_client


def material(porosity: float, grain_size: float = 10.0) -> str:
    body = example()
    body["microstructure"]["porosity"] = float(porosity)
    body["processing"]["grain_size"] = grain_size
    return orjson.dumps(
        {"composition": body["composition"], **{b: body[b] for b in ("processing", "microstructure")}}
    ).decode()


def test_inputs_like_the_training_data_are_near_and_shifted_ones_far(tmp_path, small_data):
    batch, targets = small_data
    write_csv(tmp_path / "train.csv", batch, targets)
    reference = load_reference(tmp_path / "train.csv")
    rng = np.random.default_rng(3)
    alike = [material(p) for p in rng.choice(reference.inputs["porosity"], 300)]
    shifted = [material(p) for p in rng.uniform(0.9, 1.0, 300) * reference.inputs["porosity"].max()]
    near = family_report(alike, [0] * 300, reference, reference.sha256)["inputs"]["porosity"]
    far = family_report(shifted, [1] * 150 + [0] * 150, reference, reference.sha256)
    assert near["ks_statistic"] < 0.15 and far["inputs"]["porosity"]["ks_statistic"] > 0.8
    assert far["warned_share"] == 0.5 and near["rows"] == 300


def test_a_table_that_is_not_the_models_gives_no_statistic(tmp_path, small_data):
    write_csv(tmp_path / "train.csv", *small_data)
    reference = load_reference(tmp_path / "train.csv")
    report = family_report([material(0.02)] * 50, [0] * 50, reference, "0" * 64)
    assert report["reference"]["matches_model"] is False and "inputs" not in report


def test_the_reporter_reads_the_window_and_sets_a_gauge_per_input(tmp_path, small_data):
    write_csv(tmp_path / "train.csv", *small_data)
    sha = file_sha256(tmp_path / "train.csv")
    metrics, store = Metrics(), SQLiteStore(tmp_path / "log.sqlite3")

    async def go():
        await store.open()
        import time

        rows = [
            LoggedRow(
                time.time(), "mechanical", "single", str(i), material(0.2), "m:a", "{}", "[]", 0, False, 1.0, None, None
            )
            for i in range(40)
        ]
        await store.write(*split(rows))
        report = await DriftReporter(store, 3600.0, tmp_path / "train.csv", metrics.drift).report(
            {"mechanical": ("m:a", sha)}
        )
        await store.close()
        return report

    report = asyncio.run(go())["families"]["mechanical"]
    porosity = report["inputs"]["porosity"]
    assert report["requests"] == 40 and porosity["rows"] == 40
    assert metrics.drift.labels("mechanical", "porosity")._value.get() == porosity["ks_statistic"]


def test_the_drift_route_reports_each_family_with_the_log_on(make_core, tmp_path, client):
    with logged_client(make_core, tmp_path) as http:
        http.post("/api/v1/predict/mechanical", json=example())
        report = http.get("/api/v1/drift").json()
    assert set(report["families"]) == {"mechanical", "ballistic", "hardness"}
    mechanical = report["families"]["mechanical"]
    assert mechanical["requests"] == 1 and mechanical["model_tag"].startswith("armor_mechanical:")
    # the test models were stored with dataset_sha256 0...0: data/reference_materials.csv is not their table
    assert mechanical["reference"]["matches_model"] is False
    assert client.get("/api/v1/drift").status_code == 404  # the log off
