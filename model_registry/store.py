"""Save, list and load models through the BentoML model store.

A model's directory holds ``forest.npz`` (arrays only, read with ``allow_pickle=False``) and
``model.json`` (calibration, schema, ranges, metrics). The sha256 of both is written into the
store's metadata at save time and verified at every load: a corrupt or altered file is refused
with an error that names it. The feature schema stored with the model must equal the
featurizer's, or the model is refused.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from http import HTTPStatus
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import bentoml
import numpy as np

from features.catalogue import UNITS
from features.families import ALL_FAMILIES, feature_schema
from model_registry.baseline import LinearBaseline
from model_registry.dataset import file_sha256
from model_registry.forest import ARRAY_NAMES, CompiledForest
from model_registry.model import ArmorModel

if TYPE_CHECKING:  # training (scikit-learn, crepes) stays out of serving processes
    from model_registry.train import TrainedModel

FILES = ("forest.npz", "model.json")
# BentoML's tag rule (bentoml/_internal/tag.py: at most 63 characters, a letter or digit at both
# ends), checked before it parses: a version it refuses raises a bare BentoMLException, which the API
# would take for a runner failure (503)
VERSION_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?")
LIBRARIES = ("numpy", "scikit-learn", "crepes", "bentoml", "pydantic")


class RegistryError(Exception):
    status = HTTPStatus.INTERNAL_SERVER_ERROR


class ModelNotFound(RegistryError):
    status = HTTPStatus.NOT_FOUND

    def __init__(self, message: str, available: list[str]):
        super().__init__(message)
        self.available = available


class InvalidModelVersion(RegistryError):
    """Not a version string the store could hold (BentoML's tag rules)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


class ModelIntegrityError(RegistryError):
    """A stored file does not match its recorded checksum, or the schema differs."""


def model_name(family: str) -> str:
    if family not in ALL_FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {list(ALL_FAMILIES)}")
    return f"armor_{family}"


def _write_files(directory: Path, trained: TrainedModel) -> None:
    model = trained.model
    arrays = model.forest.arrays() | {
        "range_low": model.range_low,
        "range_high": model.range_high,
        "sensitivity": model.sensitivity,
    }
    np.savez(directory / "forest.npz", **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    payload = {
        "targets": list(model.targets),
        "baseline": model.baseline.to_dict(),
        "residual_mean": model.residual_mean.tolist(),
        "residual_scale": model.residual_scale.tolist(),
        "interval_quantile": model.interval_quantile.tolist(),
        "spread_floor": model.spread_floor.tolist(),
        "feature_schema": feature_schema(model.family).to_dict(),
        "feature_ranges": trained.feature_ranges,
        "feature_importance": trained.importance,
        "metrics": trained.metrics,
    } | trained.files_extra
    (directory / "model.json").write_text(json.dumps(payload, indent=1))


def _metadata(trained: TrainedModel, dataset_sha256: str, files: dict[str, str]) -> dict:
    schema = feature_schema(trained.model.family)
    return trained.card_extra | {
        "family": trained.model.family,
        "targets": list(trained.model.targets),
        "units": {t: UNITS[t] for t in trained.model.targets},
        "metrics": trained.metrics,
        "samples": trained.samples,
        "dataset_sha256": dataset_sha256,
        "feature_schema_fingerprint": schema.fingerprint,
        "feature_count": len(schema.names),
        "training_config": asdict(trained.config),
        "files": files,
        "library_versions": {lib: version(lib) for lib in LIBRARIES} | {"python": platform.python_version()},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save(trained: TrainedModel, dataset_sha256: str) -> str:
    """Write the model into the store; returns its tag (``armor_<family>:<version>``)."""
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        _write_files(staging, trained)
        files = {name: file_sha256(staging / name) for name in FILES}
        metadata = _metadata(trained, dataset_sha256, files)
        with bentoml.models.create(
            model_name(trained.model.family),
            labels={"family": trained.model.family},
            metadata=metadata,
            module="model_registry",
        ) as ref:
            for name in FILES:
                shutil.copyfile(staging / name, Path(ref.path) / name)
        return str(ref.tag)


def list_models(family: str | None = None) -> list[bentoml.Model]:
    """Stored models of one or all families, newest first."""
    families = [family] if family else list(ALL_FAMILIES)
    names = {model_name(f) for f in families}
    models = [m for m in bentoml.models.list() if m.tag.name in names]
    return sorted(models, key=lambda m: m.info.creation_time, reverse=True)


def available_tags(family: str) -> list[str]:
    return [str(m.tag) for m in list_models(family)]


def resolve(family: str, tag: str | None = None) -> bentoml.Model:
    """The pinned ``tag`` (a full tag or just the version) or the newest model of the family."""
    if tag is None:
        models = list_models(family)
        if not models:
            raise ModelNotFound(f"no {family} model in the store; run: python -m model_registry train", [])
        return models[0]
    full = tag if ":" in tag else f"{model_name(family)}:{tag}"
    if not full.startswith(model_name(family) + ":"):
        raise ModelNotFound(f"{tag!r} is not a {family} model", available_tags(family))
    if not VERSION_PATTERN.fullmatch(full.split(":", 1)[1]):
        raise InvalidModelVersion(
            f"{tag[:80]!r} is not a model version: versions are 1-63 characters of "
            f"a-z, 0-9, '.', '_' and '-', starting and ending with a letter or digit"
        )
    try:
        return bentoml.models.get(full)
    except bentoml.exceptions.NotFound:
        raise ModelNotFound(f"model version {tag!r} not found", available_tags(family)) from None


def _verify(stored: bentoml.Model) -> Path:
    directory = Path(stored.path)
    expected = stored.info.metadata.get("files", {})
    if not isinstance(expected, dict):
        raise ModelIntegrityError(f"{directory}: the recorded checksums are not a mapping; refusing to load")
    for name in FILES:
        path = directory / name
        if name not in expected:
            raise ModelIntegrityError(f"{path}: no checksum recorded for this file; refusing to load")
        if not path.is_file() or file_sha256(path) != expected[name]:
            raise ModelIntegrityError(f"{path}: checksum mismatch (file corrupt or altered); refusing to load")
    return directory


def _payload(stored: bentoml.Model, family: str) -> dict:
    directory = _verify(stored)
    payload = json.loads((directory / "model.json").read_text())
    expected = feature_schema(family)
    if payload["feature_schema"]["names"] != list(expected.names):
        raise ModelIntegrityError(
            f"{directory / 'model.json'}: feature schema differs from the featurizer's "
            f"({len(payload['feature_schema']['names'])} vs {len(expected.names)} features)"
        )
    return payload


def card(family: str, tag: str | None = None) -> dict:
    """What the API reports about a model, read from the store: the metadata written at training
    time plus the feature ranges, names, categories and global importance from model.json."""
    stored = resolve(family, tag)
    payload = _payload(stored, family)
    return (
        dict(stored.info.metadata)
        | {
            "tag": str(stored.tag),
            "name": stored.tag.name,
            "version": stored.tag.version,
            "feature_ranges": payload["feature_ranges"],
            "feature_importance": payload["feature_importance"],
            "feature_names": payload["feature_schema"]["names"],
            "feature_categories": payload["feature_schema"]["categories"],
        }
        | ({"domain": payload["domain"]} if "domain" in payload else {})
    )


def load(family: str, tag: str | None = None) -> ArmorModel:
    """Verify checksums and schema, then build the runtime model. Never unpickles."""
    stored = resolve(family, tag)
    payload = _payload(stored, family)
    with np.load(Path(stored.path) / "forest.npz", allow_pickle=False) as arrays:
        forest = CompiledForest(**{name: arrays[name] for name in ARRAY_NAMES})
        ranges = {name: arrays[name] for name in ("range_low", "range_high", "sensitivity")}
    return ArmorModel(
        tag=str(stored.tag),
        family=family,
        targets=tuple(payload["targets"]),
        forest=forest,
        baseline=LinearBaseline(**payload["baseline"]),
        residual_mean=np.array(payload["residual_mean"]),
        residual_scale=np.array(payload["residual_scale"]),
        interval_quantile=np.array(payload["interval_quantile"]),
        spread_floor=np.array(payload["spread_floor"]),
        **ranges,
        metadata=dict(stored.info.metadata),
    )
