"""Vickers hardness from a chemical formula and a load, learned from measured data (issue 11).

Data: ``data/vickers_hardness_measured.csv`` (1,062 measurements of 529 compositions, Zhang et al.,
Adv. Mater. 33 (2021) 2005112, MIT; see data/README.md). Features: ``features.composition``.

Model: an ``ArmorModel`` (one code path with the mechanical and ballistic families), in log space:

    ln H = ln H_0 + beta * (ln P - mean ln P) + c + s * trees(x)

- ``beta`` is the indentation-size-effect exponent, fitted *within* compositions (each
  composition's own mean removed from ln H and ln P; the 148 compositions measured at 2+ loads),
  so that it is not confounded by which compounds happen to be tested at which loads. It is the
  physics baseline (``LinearBaseline`` with one log term) and carries the load beyond the data.
- ``trees``: ExtraTrees on the standardised residual, all composition features and the load;
  non-increasing in both load columns (every one of the 148 multi-load compositions in the data
  softens with load), so the answer never rises with load.
- 95 % interval: split conformal in log space (crepes), normalised by the spread across trees plus
  the distance outside the training range (``model_registry.model``); calibrated on compositions
  held out of the fit (a random 20 % of the compositions, all their loads).

Evaluation (``grouped_cv``): GroupKFold over compositions (a composition's canonical key, so
``TiB2`` and ``B2Ti`` are one group: the same compound at several loads is never on both sides).
In each fold the full procedure (fit, conformal calibration on held-out compositions of the
training folds) is run on the training folds only; MAE, RMSE and R^2 in GPa and the 95 % coverage
are pooled over the out-of-fold rows, beside a mean predictor and a ridge regression on the same
standardised features and folds.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from crepes import ConformalRegressor
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from features.catalogue import FORMULA_TARGETS
from features.composition import FAMILY, LOAD_COLUMNS, CompositionDomain, FormulaFeaturizer
from features.formula import Composition, FormulaError, parse_formula
from model_registry.baseline import LinearBaseline
from model_registry.dataset import DatasetError
from model_registry.forest import CompiledForest
from model_registry.model import ArmorModel
from model_registry.train import TrainedModel, _feature_ranges, _sensitivity, permutation_importance

DATA_CSV = Path(__file__).resolve().parent.parent / "data" / "vickers_hardness_measured.csv"
TARGETS = FORMULA_TARGETS[FAMILY]
CONFIDENCE = 0.95
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 13))
DATASET = {
    "file": "data/vickers_hardness_measured.csv",
    "licence": "MIT (data/vickers_hardness_measured.LICENSE)",
    "citation": "Z. Zhang, A. M. Tehrani, A. O. Oliynyk, B. Day, J. Brgoch, Finding the next superhard material "
    "through ensemble learning, Adv. Mater. 33 (2021) 2005112",
}
# What the data's authors report, with where it was read; not measured here (docs/science.md).
PUBLISHED = {
    "paper": {
        "r2": 0.97,
        "source": "abstract of the ChemRxiv preprint 12652934 (2020) of the paper",
        "split": "random 90/10 split of the rows (train_test_split(train_size=0.9, random_state=0) in the "
        "authors' hv_prediction.py): not grouped, the same composition can be on both sides",
    },
    "authors_repository_grouped_cv": {
        "mae": 2.2957275,
        "rmse": 3.4197476,
        "source": "comment in vickers_hardness/hv_cv.py of github.com/ziyan1996/VickersHardnessPrediction",
        "split": "GroupKFold(5) by composition string (later code in the authors' repository, not the paper)",
    },
}


@dataclass(frozen=True)
class HardnessConfig:
    # chosen by the grouped CV below among (100 trees; leaf 2, features 0.4) and (leaf 1, features
    # 0.25): MAE 2.58 vs 2.50 GPa, coverage 0.950 vs 0.952
    n_estimators: int = 100
    max_depth: int = 48  # unlimited in effect (the trees grow to depth ~30); BentoML metadata takes no None
    min_samples_leaf: int = 1
    max_features: float = 0.25
    seed: int = 0
    calibration_folds: int = 4  # cross-conformal folds over compositions for the interval quantile
    folds: int = 5  # grouped cross-validation over compositions
    importance_repeats: int = 2
    importance_rows: int = 300  # a seeded sample of the rows: permutation importance over all 1,062 took 18 s


@dataclass(frozen=True)
class HardnessData:
    compositions: tuple[Composition, ...]
    load_n: np.ndarray
    hardness_gpa: np.ndarray

    @property
    def groups(self) -> np.ndarray:
        """One group per composition (canonical key: ``TiB2`` and ``B2Ti`` are one group)."""
        return np.array([c.key for c in self.compositions])

    def subset(self, rows: np.ndarray) -> HardnessData:
        return HardnessData(tuple(self.compositions[i] for i in rows), self.load_n[rows], self.hardness_gpa[rows])


def read_hardness_csv(path: Path = DATA_CSV) -> HardnessData:
    """The measured table: columns composition, hardness (GPa), load (N)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise DatasetError(f"{path}: no data rows")
    missing = {"composition", "hardness", "load"} - set(rows[0])
    if missing:
        raise DatasetError(f"{path}: missing column(s) {sorted(missing)}")
    compositions = []
    for line, r in enumerate(rows, start=2):
        try:
            compositions.append(parse_formula(r["composition"]))
        except FormulaError as exc:
            raise DatasetError(f"{path}: line {line}: {exc}") from None
    hardness, load = np.array([float(r["hardness"]) for r in rows]), np.array([float(r["load"]) for r in rows])
    if not (np.all(hardness > 0) and np.all(load > 0)):
        raise DatasetError(f"{path}: hardness and load must be positive")
    return HardnessData(tuple(compositions), load, hardness)


def within_composition_slope(log_load: np.ndarray, log_hardness: np.ndarray, groups: np.ndarray) -> float:
    """d ln H / d ln P with every composition's own mean removed (fixed effects): only the variation
    of a compound's hardness with its own load counts."""
    _, codes = np.unique(groups, return_inverse=True)
    counts = np.bincount(codes)
    x = log_load - (np.bincount(codes, log_load) / counts)[codes]
    y = log_hardness - (np.bincount(codes, log_hardness) / counts)[codes]
    denominator = float(x @ x)
    return float(x @ y) / denominator if denominator > 0 else 0.0


def _load_baseline(X: np.ndarray, z: np.ndarray, groups: np.ndarray, names: tuple[str, ...]) -> LinearBaseline:
    """ln H = intercept + beta * ln(load): beta within compositions, the intercept over all rows."""
    j = names.index("load_n")
    log_load = np.log(X[:, j])
    beta = within_composition_slope(log_load, z, groups)
    intercept = float(np.mean(z - beta * log_load))
    return LinearBaseline(
        links=["log"],
        columns=[[j]],
        transforms=[["log"]],
        coefficients=[[beta]],
        intercepts=[intercept],
        term_means=[[float(log_load.mean())]],
    )


def _fit_forest(X: np.ndarray, r: np.ndarray, names: tuple[str, ...], config: HardnessConfig) -> CompiledForest:
    constraints = np.array([-1 if n in LOAD_COLUMNS else 0 for n in names])
    forest = ExtraTreesRegressor(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        max_features=config.max_features,
        monotonic_cst=constraints,
        random_state=config.seed,
        n_jobs=-1,
    ).fit(X, r)
    return CompiledForest.from_trees([[e.tree_ for e in forest.estimators_]])


def _fit_on(
    X: np.ndarray, hardness_gpa: np.ndarray, groups: np.ndarray, names: tuple[str, ...], config: HardnessConfig
) -> ArmorModel:
    """Baseline and correction trees on these rows (interval not yet calibrated)."""
    z = np.log(hardness_gpa)
    baseline = _load_baseline(X, z, groups, names)
    residual = z - baseline.predict(X)[:, 0]
    r_mean, r_scale = float(residual.mean()), float(residual.std()) + 1e-12
    model = ArmorModel(
        tag="",
        family=FAMILY,
        targets=TARGETS,
        forest=_fit_forest(X, (residual - r_mean) / r_scale, names, config),
        baseline=baseline,
        residual_mean=np.array([r_mean]),
        residual_scale=np.array([r_scale]),
        interval_quantile=np.ones(1),
        spread_floor=np.zeros(1),
        range_low=X.min(axis=0),
        range_high=X.max(axis=0),
        sensitivity=np.zeros((X.shape[1], 1)),
    )
    model.sensitivity = _sensitivity(model, X)
    return model


def fit_model(
    X: np.ndarray, hardness_gpa: np.ndarray, groups: np.ndarray, names: tuple[str, ...], config: HardnessConfig
) -> ArmorModel:
    """Fit on every row; the conformal quantile comes from out-of-fold residuals (cross-conformal,
    ``config.calibration_folds`` folds over compositions), so every composition calibrates the
    interval once without the model it calibrates having seen it, and the served model has seen
    every measured compound. ``grouped_cv`` checks the coverage of exactly this procedure."""
    residuals, spreads = [], []
    inner = GroupKFold(n_splits=config.calibration_folds, shuffle=True, random_state=config.seed)
    for fit_rows, cal_rows in inner.split(X, groups=groups):
        held_out = _fit_on(X[fit_rows], hardness_gpa[fit_rows], groups[fit_rows], names, config)
        z, spread, _ = held_out.link_prediction(X[cal_rows])
        residuals.append(np.log(hardness_gpa[cal_rows]) - z[:, 0])
        spreads.append(spread[:, 0])
    model = _fit_on(X, hardness_gpa, groups, names, config)
    model.spread_floor, model.interval_quantile = _conformal(np.concatenate(residuals), np.concatenate(spreads))
    return model


def _conformal(residuals: np.ndarray, spreads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spread floor (a quarter of the median tree spread, as ``model_registry.train``) and the
    normalised conformal quantile at ``CONFIDENCE`` (crepes)."""
    floor = 0.25 * float(np.median(spreads)) + 1e-12
    conformal = ConformalRegressor().fit(residuals=residuals, sigmas=spreads + floor)
    quantile = conformal.predict_int(y_hat=np.zeros(1), sigmas=np.ones(1), confidence=CONFIDENCE)[0, 1]
    return np.array([floor]), np.array([quantile])


def _ridge(X: np.ndarray, hardness_gpa: np.ndarray, groups: np.ndarray, config: HardnessConfig) -> Any:
    """Ridge on standardised features, ln H target, alpha chosen by grouped CV inside the training folds."""
    inner = list(GroupKFold(n_splits=config.folds).split(X, groups=groups))
    pipeline = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS, cv=inner))
    return pipeline.fit(X, np.log(hardness_gpa))


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "mae": float(mean_absolute_error(y, p)),
        "rmse": float(np.sqrt(mean_squared_error(y, p))),
        "r2": float(r2_score(y, p)),
        "median_relative_error": float(np.median(np.abs(p - y) / y)),
    }


def composition_folds(groups: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training rows, test rows) of a shuffled GroupKFold: every row of a composition on one side."""
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros((len(groups), 1)), groups=groups))


def grouped_cv(
    X: np.ndarray,
    hardness_gpa: np.ndarray,
    groups: np.ndarray,
    names: tuple[str, ...],
    config: HardnessConfig,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Out-of-fold predictions of the model, a mean predictor and ridge, on the same grouped folds."""
    n = len(X)
    folds = composition_folds(groups, config.folds, config.seed)
    oof = {name: np.zeros(n) for name in ("model", "mean", "ridge", "lower", "upper")}
    per_fold = []
    for k, (train, test) in enumerate(folds):
        model = fit_model(X[train], hardness_gpa[train], groups[train], names, config)
        pred = model.predict(X[test])
        oof["model"][test], oof["lower"][test], oof["upper"][test] = (
            pred.values[:, 0],
            pred.lower[:, 0],
            pred.upper[:, 0],
        )
        oof["mean"][test] = hardness_gpa[train].mean()
        oof["ridge"][test] = np.exp(_ridge(X[train], hardness_gpa[train], groups[train], config).predict(X[test]))
        fold = _scores(hardness_gpa[test], oof["model"][test]) | {
            "rows": len(test),
            "compositions": len(set(groups[test])),
        }
        per_fold.append(fold)
        progress(f"  fold {k + 1}/{config.folds}: MAE {fold['mae']:.2f} GPa on {fold['compositions']} compositions")
    inside = (oof["lower"] <= hardness_gpa) & (hardness_gpa <= oof["upper"])
    return {
        "split": f"GroupKFold({config.folds}, shuffled, seed {config.seed}) over compositions",
        "rows": n,
        "compositions": len(set(groups)),
        "model": _scores(hardness_gpa, oof["model"])
        | {"coverage_95": float(inside.mean()), "mean_interval_width": float((oof["upper"] - oof["lower"]).mean())},
        "mean_predictor": _scores(hardness_gpa, oof["mean"]),
        "ridge": _scores(hardness_gpa, oof["ridge"]),
        "per_fold": per_fold,
        "folds_disjoint_by_composition": all(not set(groups[tr]) & set(groups[te]) for tr, te in folds),
    }


def train_hardness(
    data: HardnessData,
    config: HardnessConfig = HardnessConfig(),
    progress: Callable[[str], None] = print,
    evaluate: bool = True,
) -> TrainedModel:
    """Grouped CV of the whole procedure (when ``evaluate``), then the served model on all rows.
    ``files_extra["domain"]`` is the ``CompositionDomain`` (as a dict) the warnings are checked against."""
    featurizer = FormulaFeaturizer()
    names = featurizer.schema.names
    X = featurizer.transform(data.compositions, data.load_n)
    groups = data.groups
    started = time.perf_counter()
    evaluation: dict[str, Any] = {}
    if evaluate:
        progress(f"[{FAMILY}] grouped {config.folds}-fold CV on {len(X)} rows x {X.shape[1]} features")
        evaluation = grouped_cv(X, data.hardness_gpa, groups, names, config, progress)
    model = fit_model(X, data.hardness_gpa, groups, names, config)
    progress(f"[{FAMILY}] trained in {time.perf_counter() - started:.1f} s")
    sample = np.random.default_rng(config.seed).permutation(len(X))[: config.importance_rows]
    importance = permutation_importance(
        model, X[sample], data.hardness_gpa[sample, None], names, config.importance_repeats, config.seed
    )
    return TrainedModel(
        model=model,
        metrics={TARGETS[0]: _card_metrics(evaluation)} if evaluate else {},
        samples={
            "total": len(X),
            "compositions": len(set(groups)),
            "training": len(X),
            "calibration": len(X),  # cross-conformal: every row once, out of fold
            "test": evaluation.get("rows", 0),
        },
        importance=importance,
        feature_ranges=_feature_ranges(X, names),
        config=config,
        card_extra={"evaluation": evaluation | {"published": PUBLISHED}, "dataset": DATASET} if evaluate else {},
        files_extra={"domain": CompositionDomain.fit(data.compositions, X, featurizer.schema).to_dict()},
    )


def _card_metrics(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The per-target metrics the registry prints and the API reports: grouped-CV, out of fold."""
    model = evaluation["model"]
    return {
        "r2": model["r2"],
        "mae": model["mae"],
        "rmse": model["rmse"],
        "median_relative_error": model["median_relative_error"],
        "coverage_95": model["coverage_95"],
        "mean_interval_width": model["mean_interval_width"],
        "test_samples": evaluation["rows"],
        "evaluation": "grouped 5-fold CV over compositions (out-of-fold rows)",
    }


def predict_formulas(model: ArmorModel, formulas: Sequence[str], load_n: float) -> list[dict[str, Any]]:
    """Value and 95 % interval (GPa) of each formula at one load (docs and sanity checks)."""
    compositions = [parse_formula(f) for f in formulas]
    X = FormulaFeaturizer().transform(compositions, np.full(len(compositions), load_n))
    pred = model.predict(X)
    return [
        {"formula": f, "load_n": load_n, "value": float(v), "lower": float(lo), "upper": float(hi)}
        for f, v, lo, hi in zip(formulas, pred.values[:, 0], pred.lower[:, 0], pred.upper[:, 0], strict=True)
    ]
