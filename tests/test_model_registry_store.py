import shutil
from pathlib import Path

import numpy as np
import pytest

from features.batch import MaterialBatch
from features.featurizer import Featurizer
from model_registry import store


def test_round_trip_gives_identical_predictions(trained, stored_tags, small_data):
    batch, _ = small_data
    for family, tag in stored_tags.items():
        loaded = store.load(family, tag)
        X = Featurizer(family).transform(batch.take(np.arange(50)))
        np.testing.assert_allclose(loaded.predict(X).values, trained[family].model.predict(X).values)
        assert loaded.tag == tag


def test_metadata_holds_metrics_samples_schema_versions(stored_tags):
    for family, tag in stored_tags.items():
        meta = store.resolve(family, tag).info.metadata
        assert set(meta["metrics"]) == set(meta["targets"])
        for m in meta["metrics"].values():
            assert {"r2", "mae", "coverage_95", "mean_interval_width", "test_samples"} <= set(m)
        assert meta["samples"]["total"] == 8000
        assert meta["samples"]["test"] + meta["samples"]["calibration"] + meta["samples"]["training"] == 8000
        assert meta["feature_schema_fingerprint"] == Featurizer(family).schema.fingerprint
        assert {"numpy", "scikit-learn", "bentoml", "python"} <= set(meta["library_versions"])
        assert meta["created_at"] and len(meta["dataset_sha256"]) == 64


def test_held_out_coverage_inside_band(trained):
    """93-97 %, widened to three binomial standard deviations where a target has few test rows
    (back-face deformation exists only where the threat is stopped)."""
    for family, model in trained.items():
        for target, m in model.metrics.items():
            slack = max(0.02, 3 * (0.95 * 0.05 / m["test_samples"]) ** 0.5)
            assert 0.95 - slack <= m["coverage_95"] <= 0.95 + slack, (family, target, m["coverage_95"])


def test_newest_model_is_default(stored_tags):
    for family, _tag in stored_tags.items():
        assert str(store.resolve(family).tag) == str(store.list_models(family)[0].tag)


def test_unknown_version_lists_available(stored_tags):
    with pytest.raises(store.ModelNotFound) as info:
        store.load("mechanical", "doesnotexist")
    assert stored_tags["mechanical"] in info.value.available
    assert info.value.status == 404


@pytest.mark.parametrize("version", ["cbbc9x_", "abc.", "-abc", "a" * 64, "ABC"])
def test_a_version_bentoml_cannot_parse_is_refused_as_invalid(stored_tags, version):
    """Not BentoML's bare exception for a tag it cannot parse (the API took it for a runner failure: 503)."""
    with pytest.raises(store.InvalidModelVersion):
        store.resolve("mechanical", version)


def _copy_model(tag: str, tmp_path: Path) -> Path:
    stored = store.resolve(tag.split(":")[0].removeprefix("armor_"), tag)
    backup = tmp_path / "backup"
    shutil.copytree(stored.path, backup)
    return Path(stored.path), backup


@pytest.mark.parametrize("filename", ["forest.npz", "model.json"])
def test_tampered_file_is_refused_naming_the_file(stored_tags, tmp_path, filename):
    path, backup = _copy_model(stored_tags["mechanical"], tmp_path)
    try:
        with open(path / filename, "r+b") as handle:
            handle.seek(100)
            byte = handle.read(1)
            handle.seek(100)
            handle.write(bytes([byte[0] ^ 0xFF]))
        with pytest.raises(store.ModelIntegrityError, match=filename):
            store.load("mechanical", stored_tags["mechanical"])
    finally:
        shutil.rmtree(path)
        shutil.copytree(backup, path)
    store.load("mechanical", stored_tags["mechanical"])  # restored file loads again


def test_model_files_hold_no_pickle(stored_tags):
    stored = store.resolve("ballistic", stored_tags["ballistic"])
    with np.load(Path(stored.path) / "forest.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)


def test_one_call_gives_every_target_and_interval(trained, small_data):
    batch, _ = small_data
    model = trained["ballistic"].model
    pred = model.predict(Featurizer("ballistic").transform(MaterialBatch.take(batch, np.arange(5))))
    assert pred.values.shape == pred.lower.shape == pred.upper.shape == (5, 4)
    assert np.all(pred.lower <= pred.values) and np.all(pred.values <= pred.upper)


def test_ensure_refuses_a_corrupt_serving_model_with_one_line_naming_the_file(trained, stored_tags, capsys):
    import bentoml

    from model_registry.__main__ import main

    tag = store.save(trained["ballistic"], dataset_sha256="3" * 64)  # the newest: what would be served
    path = Path(store.resolve("ballistic", tag).path) / "forest.npz"
    try:
        path.write_bytes(path.read_bytes()[:-10] + b"corrupted!")
        assert main(["ensure"]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and str(path) in error and "checksum mismatch" in error
    finally:
        bentoml.models.delete(tag)
    assert main(["ensure"]) == 0
