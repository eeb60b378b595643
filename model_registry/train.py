"""Train, calibrate and evaluate one model family.

Split (seeded): 60 % training, 20 % calibration, 20 % held-out test. The test rows are never
seen by the baseline fit, the forest or the conformal calibration; every metric stored with the
model is measured on them. Model: physics baseline (``features.targets``, fitted by
``model_registry.baseline``) plus monotone correction trees on the link-space residual
(``model_registry.model``). Intervals: split conformal regression in link space normalised by
the spread across trees plus the distance outside the training range (crepes'
``ConformalRegressor``), so harder inputs and extrapolation get wider intervals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from crepes import ConformalRegressor
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.metrics import mean_absolute_error, r2_score

from features.batch import MaterialBatch
from features.catalogue import TARGETS
from features.featurizer import MONOTONE_DEPENDENCIES, Featurizer
from model_registry import baseline
from model_registry.forest import CompiledForest
from model_registry.model import ArmorModel

CONFIDENCE = 0.95


@dataclass(frozen=True)
class TrainingConfig:
    n_estimators: int = 25  # per target
    max_depth: int = 18
    min_samples_leaf: int = 3
    max_features: float = 0.7
    seed: int = 0
    calibration_fraction: float = 0.2
    test_fraction: float = 0.2
    importance_repeats: int = 3


@dataclass
class TrainedModel:
    model: ArmorModel
    metrics: dict
    samples: dict
    importance: dict
    feature_ranges: dict
    config: Any  # TrainingConfig, or a family's own frozen config dataclass (stored with asdict)
    card_extra: dict = field(default_factory=dict)  # more registry metadata (hardness: grouped-CV evaluation, data)
    files_extra: dict = field(default_factory=dict)  # more model.json entries (hardness: the composition domain)


def split_indices(n: int, config: TrainingConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(config.seed).permutation(n)
    n_test, n_cal = int(n * config.test_fraction), int(n * config.calibration_fraction)
    return order[n_test + n_cal :], order[n_test : n_test + n_cal], order[:n_test]


def _fit_forest(
    X: np.ndarray, R: np.ndarray, targets, names, config: TrainingConfig, progress: Callable[[str], None]
) -> CompiledForest:
    """One correction forest per target on its standardised link-space residual, on the rows where
    the target is present, monotone in every column that carries one of the target's trends."""
    groups, columns = [], []
    for o, target in enumerate(targets):
        rows = ~np.isnan(R[:, o])
        if rows.sum() < 10:
            raise ValueError(f"target {target!r} has {rows.sum()} training rows; at least 10 are needed")
        constraints, usable = baseline.monotone_constraints(target, names, MONOTONE_DEPENDENCIES)
        used = np.flatnonzero(usable)
        forest = ExtraTreesRegressor(
            n_estimators=config.n_estimators,
            max_depth=config.max_depth,
            n_jobs=-1,
            min_samples_leaf=config.min_samples_leaf,
            max_features=config.max_features,
            monotonic_cst=constraints[used],
            random_state=config.seed,
        ).fit(X[np.ix_(rows, used)], R[rows, o])
        groups.append([e.tree_ for e in forest.estimators_])
        columns.append(used)
        progress(
            f"  {target}: {config.n_estimators} trees on {rows.sum()} rows, "
            f"{int((constraints != 0).sum())} monotone columns"
        )
    return CompiledForest.from_trees(groups, columns)


def _sensitivity(model: ArmorModel, X: np.ndarray) -> np.ndarray:
    """(F, O) 2.5-97.5 % range of each feature's path contributions to the correction (link units)."""
    contributions = model.forest.predict(X, contributions=True).contributions
    assert contributions is not None  # asked for
    spread = np.percentile(contributions, 97.5, axis=0) - np.percentile(contributions, 2.5, axis=0)
    return spread * model.residual_scale


def _clip_logits(model: ArmorModel, z: np.ndarray) -> np.ndarray:
    """A probability target is trained on values clipped to [LOGIT_EPS, 1 - LOGIT_EPS]: a predicted
    logit beyond that clip is the same answer (p ~ 0 or 1), so it is not a residual to calibrate on."""
    logit = np.array([name == "logit" for name in model.baseline.links])
    return np.where(logit, np.clip(z, -baseline.LOGIT_EDGE, baseline.LOGIT_EDGE), z)


def _calibrate(model: ArmorModel, X: np.ndarray, Y: np.ndarray) -> None:
    """Set each target's conformal quantile from the calibration rows (missing targets skipped)."""
    z, spread, _ = model.link_prediction(X)
    z = _clip_logits(model, z)
    Z = baseline.link_all(model.baseline.links, Y)
    model.spread_floor = 0.25 * np.nanmedian(spread, axis=0) + 1e-12
    quantiles = []
    for o in range(Y.shape[1]):
        rows = ~np.isnan(Y[:, o])
        conformal = ConformalRegressor().fit(
            residuals=Z[rows, o] - z[rows, o], sigmas=spread[rows, o] + model.spread_floor[o]
        )
        quantiles.append(conformal.predict_int(y_hat=np.zeros(1), sigmas=np.ones(1), confidence=CONFIDENCE)[0, 1])
    model.interval_quantile = np.array(quantiles)


def evaluate(model: ArmorModel, X: np.ndarray, Y: np.ndarray) -> dict:
    """Per-target R2, MAE, 95 % interval coverage and mean width on rows not used to fit or calibrate.
    A probability is compared at the resolution the model is trained on: clipped to
    [LOGIT_EPS, 1 - LOGIT_EPS] (a true 1e-7 and 1e-4 are the same answer to an engineer)."""
    pred = model.predict(X)
    metrics = {}
    for o, target in enumerate(model.targets):
        rows = ~np.isnan(Y[:, o])
        y, p = Y[rows, o], pred.values[rows, o]
        if model.baseline.links[o] == "logit":
            y = np.clip(y, baseline.LOGIT_EPS, 1 - baseline.LOGIT_EPS)
        inside = (pred.lower[rows, o] <= y) & (y <= pred.upper[rows, o])
        relative = np.abs(p - y) / np.maximum(np.abs(y), 1e-12)
        metrics[target] = {
            "r2": float(r2_score(y, p)),
            "mae": float(mean_absolute_error(y, p)),
            "median_relative_error": float(np.median(relative)),
            "coverage_95": float(inside.mean()),
            "mean_interval_width": float((pred.upper[rows, o] - pred.lower[rows, o]).mean()),
            "test_samples": int(rows.sum()),
        }
    return metrics


def permutation_importance(model: ArmorModel, X: np.ndarray, Y: np.ndarray, names, repeats: int, seed: int) -> dict:
    """Mean drop of the targets' average R2 (on standardised targets) when one feature is shuffled,
    normalised to sum to 1 over features (negative drops count as 0)."""
    rows = ~np.isnan(Y).any(axis=1)
    X, Y = X[rows], Y[rows]
    if len(X) < 20:
        return {}
    rng = np.random.default_rng(seed)
    baseline = _mean_r2(model, X, Y)
    drops = np.zeros(X.shape[1])
    for j in range(X.shape[1]):
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            drops[j] += (baseline - _mean_r2(model, shuffled, Y)) / repeats
    drops = np.clip(drops, 0.0, None)
    total = drops.sum() or 1.0
    return {name: float(d / total) for name, d in zip(names, drops, strict=False)}


def _mean_r2(model: ArmorModel, X: np.ndarray, Y: np.ndarray) -> float:
    pred = model.predict(X).values
    return float(np.mean([r2_score(Y[:, o], pred[:, o]) for o in range(Y.shape[1])]))


def _feature_ranges(X: np.ndarray, names) -> dict:
    return {n: [float(lo), float(hi)] for n, lo, hi in zip(names, X.min(axis=0), X.max(axis=0), strict=False)}


def train_family(
    batch: MaterialBatch,
    targets: dict[str, np.ndarray],
    family: str,
    config: TrainingConfig = TrainingConfig(),
    progress: Callable[[str], None] = print,
    split: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> TrainedModel:
    """Fit the physics baseline, then the correction trees, calibrate and evaluate. ``split``
    (training, calibration, test row indices) replaces the seeded random split when given."""
    featurizer = Featurizer(family)
    names = TARGETS[family]
    missing = [t for t in names if t not in targets]
    if missing:
        raise ValueError(f"the data have no column for {family} target(s) {missing}")
    X = featurizer.transform(batch)
    Y = np.column_stack([targets[t] for t in names])
    train, cal, test = split if split is not None else split_indices(len(X), config)
    started = time.perf_counter()
    progress(f"[{family}] fitting the physics baseline and the correction on {len(train)} rows x {X.shape[1]} features")
    model = _fit_model(family, names, featurizer.schema.names, X[train], Y[train], config, progress)
    progress(f"[{family}] fitted in {time.perf_counter() - started:.1f} s; calibrating on {len(cal)} rows")
    _calibrate(model, X[cal], Y[cal])
    progress(f"[{family}] evaluating on {len(test)} held-out rows")
    metrics = evaluate(model, X[test], Y[test])
    importance = permutation_importance(
        model, X[test], Y[test], featurizer.schema.names, config.importance_repeats, config.seed
    )
    samples = {"total": len(X), "training": len(train), "calibration": len(cal), "test": len(test)}
    return TrainedModel(
        model=model,
        metrics=metrics,
        samples=samples,
        importance=importance,
        feature_ranges=_feature_ranges(X[train], featurizer.schema.names),
        config=config,
    )


def _fit_model(family, names, feature_names, X, Y, config, progress) -> ArmorModel:
    fitted = baseline.fit(names, X, Y, feature_names)
    Z = baseline.link_all(fitted.links, Y)
    residual = Z - fitted.predict(X)
    r_mean, r_scale = np.nanmean(residual, axis=0), np.nanstd(residual, axis=0) + 1e-12
    forest = _fit_forest(X, (residual - r_mean) / r_scale, names, feature_names, config, progress)
    n_features = X.shape[1]
    model = ArmorModel(
        tag="",
        family=family,
        targets=names,
        forest=forest,
        baseline=fitted,
        residual_mean=r_mean,
        residual_scale=r_scale,
        interval_quantile=np.ones(len(names)),
        spread_floor=np.zeros(len(names)),
        range_low=X.min(axis=0),
        range_high=X.max(axis=0),
        sensitivity=np.zeros((n_features, len(names))),
    )
    model.sensitivity = _sensitivity(model, X)
    return model
