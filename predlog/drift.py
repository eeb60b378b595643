"""Drift: do the materials people ask about still look like the serving model's training data?

Per numeric input (phase volume fractions and the numeric processing, microstructure and armor
inputs), the two-sample Kolmogorov-Smirnov distance (``scipy.stats.ks_2samp``) between the
inputs logged in the window and the training table: the largest gap between the two cumulative
distributions, 0 for the same distribution and 1 for disjoint ones, with its p-value. KS rather
than PSI: it needs no choice of bins, and scipy computes it with its p-value. The reference is
the table named by DRIFT_REFERENCE_CSV, used only when its SHA-256 is the serving model's
``dataset_sha256`` (the registry's record of what it was trained on); otherwise the report says
so and gives no statistic. The whole table is the reference (the training, calibration and test
rows: the model's split is random, so they share one distribution).

Also per family: the share of logged answers that carried a warning (the domain checks' inputs
outside the training range, and for ballistic the build's warnings). Hardness gives that share
only (a formula is not a fixed set of numeric inputs).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from prometheus_client import Gauge

from features.batch import NUMERIC_INPUTS
from features.catalogue import BLOCKS
from features.catalogue import FAMILIES as MATERIAL_FAMILIES
from features.phases import PHASES
from model_registry.dataset import file_sha256, read_csv
from predlog.store import Store

MIN_ROWS = 20  # fewer logged values of an input give no statistic (KS on a handful is noise)


@dataclass(frozen=True)
class Reference:
    """The training table's inputs by name, and the file's SHA-256."""

    sha256: str
    inputs: dict[str, np.ndarray]


def load_reference(path: Path) -> Reference:
    batch, _ = read_csv(path)
    inputs = {phase: batch.volume_fractions[:, i] for i, phase in enumerate(PHASES)}
    inputs |= {name: np.asarray(getattr(batch, name), dtype=float) for name in NUMERIC_INPUTS}
    return Reference(file_sha256(path), inputs)


def logged_inputs(materials: list[str]) -> dict[str, np.ndarray]:
    """The logged canonical materials (JSON, api/prediction/keys.py) as columns of their numeric
    inputs; an input a material does not carry (mechanical: the armor block) is left out."""
    columns: dict[str, list[float]] = {}
    for text in materials:
        material = orjson.loads(text)
        composition = material.get("composition", {})
        for phase in PHASES:
            columns.setdefault(phase, []).append(float(composition.get(phase, 0.0)))
        for block in BLOCKS:
            for name, value in material.get(block, {}).items():
                if name in NUMERIC_INPUTS and isinstance(value, int | float):
                    columns.setdefault(name, []).append(float(value))
    return {name: np.asarray(values) for name, values in columns.items()}


def input_drift(logged: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    if len(logged) < MIN_ROWS:
        return {"rows": len(logged), "ks_statistic": None, "p_value": None}
    from scipy.stats import ks_2samp  # with the first report: scipy.stats is ~67 MB in every process that imports it

    result = ks_2samp(logged, reference)
    return {
        "rows": len(logged),
        "ks_statistic": float(result.statistic),
        "p_value": float(result.pvalue),
        "logged_median": float(np.median(logged)),
        "training_median": float(np.median(reference)),
    }


def family_report(
    materials: list[str], warned: list[int], reference: Reference | None, model_sha256: str | None
) -> dict[str, Any]:
    """One family's report from its logged rows (``warned``: each row's warning count)."""
    report: dict[str, Any] = {
        "requests": len(materials),
        "warned_share": float(np.mean(np.asarray(warned) > 0)) if warned else None,
    }
    if reference is None:
        return report
    matches = model_sha256 is not None and reference.sha256 == model_sha256
    report["reference"] = {"sha256": reference.sha256, "model_dataset_sha256": model_sha256, "matches_model": matches}
    if not matches:
        return report
    logged = logged_inputs(materials)
    report["inputs"] = {
        name: input_drift(values, reference.inputs[name]) for name, values in logged.items() if name in reference.inputs
    }
    return report


def window_start(window_s: float, now: float | None = None) -> float:
    return (time.time() if now is None else now) - window_s


class DriftReporter:
    """GET /api/v1/drift of one API worker: the logged inputs of the last DRIFT_WINDOW_S against
    the training table (read once, off the event loop), the Prometheus gauge set per input."""

    MAX_ROWS = 20_000  # newest logged rows per family a report reads

    def __init__(self, store: Store, window_s: float, reference_csv: Path, gauge: Gauge):
        self.store, self.window_s, self.reference_csv, self.gauge = store, window_s, reference_csv, gauge
        self._reference: Reference | None = None

    async def _load(self) -> Reference | None:
        if self._reference is None and self.reference_csv.is_file():
            self._reference = await asyncio.to_thread(load_reference, self.reference_csv)
        return self._reference

    async def report(self, models: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
        """``models``: family -> (serving tag, its dataset_sha256)."""
        since = window_start(self.window_s)
        await self.store.open()
        families: dict[str, Any] = {}
        for family, (tag, sha256) in models.items():
            rows = await self.store.inputs(family, since, self.MAX_ROWS)
            reference = await self._load() if family in MATERIAL_FAMILIES else None
            materials, warned = [m for m, _ in rows], [w for _, w in rows]
            found = await asyncio.to_thread(family_report, materials, warned, reference, sha256)
            families[family] = {"model_tag": tag} | found
            self._publish(family, found.get("inputs", {}))
        return {"window_s": self.window_s, "statistic": "two-sample Kolmogorov-Smirnov distance", "families": families}

    def _publish(self, family: str, inputs: dict[str, Any]) -> None:
        for name, figures in inputs.items():
            if figures["ks_statistic"] is not None:
                self.gauge.labels(family, name).set(figures["ks_statistic"])
