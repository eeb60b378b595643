"""Vickers hardness from a chemical formula and a load, learned from measured data (issue 11).

Data: ``data/vickers_hardness_measured.csv`` (1,062 measurements of 529 compositions, Zhang et al.,
Adv. Mater. 33 (2021) 2005112, MIT; see data/README.md). Features: ``features.composition``.

Model: an ``ArmorModel`` (one code path with the mechanical and ballistic families), in log space:

    ln H = ln H0(x) + ln g(P / P*(x)),   ln H0(x) = c + s * trees(x)

- ``g`` is Li & Bradt's proportional-specimen-resistance size effect (``features.indentation``):
  it falls with load and levels off at the load-independent H0. P* = exp(c0 + c1 max_valence_d)
  is fitted *within* compositions on the compounds measured at several loads (each compound's own
  mean removed), so it is not confounded by which compounds happen to be tested at which loads.
  The law travels in the baseline (``LinearBaseline.load_law``) and carries the load everywhere.
- ``trees``: ExtraTrees on the load-free residual, the load columns held constant while they are
  fitted, so the load curve of every compound is exactly the law.
- Anchors (``with_phase_anchors``): one row per catalogue phase at its phase-table HV1 (9.8 N);
  it sets its compound's load-independent level (``_anchored_residuals``), so the formula route
  and the mechanical route start from the same sourced value (``model_registry.routes``).
- 95 % interval: cross-conformal in log space (crepes), normalised by the spread across trees, the
  distance outside the training range and the law's own uncertainty away from the measured loads
  (``SizeEffectLaw.half_width``); calibrated on the measured rows of compositions held out of the fit.

Evaluation (``grouped_cv``): GroupKFold over compositions (a composition's canonical key, so
``TiB2`` and ``B2Ti`` are one group: the same compound at several loads is never on both sides).
In each fold the full procedure (law, anchors, fit, conformal calibration on held-out compositions
of the training folds) is run on the training folds only; MAE, RMSE and R^2 in GPa, the 95 %
coverage and relative width are pooled over the out-of-fold measured rows (all, and the hard
ceramics), beside a mean predictor and a ridge regression on the same standardised features and
folds. ``held_out_group`` fits without every hard ceramic and scores them; ``in_data_widths``
compares the served interval with each multiply-measured compound's spread.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
from features.indentation import SizeEffectLaw, psr_factor
from features.phases import PHASES, load_phase_hv1
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
    # chosen by the grouped CV among (100 trees; leaf 2, features 0.4) and (leaf 1, features 0.25)
    n_estimators: int = 100
    max_depth: int = 48  # unlimited in effect (the trees grow to depth ~30); BentoML metadata takes no None
    min_samples_leaf: int = 1
    max_features: float = 0.25
    seed: int = 0
    calibration_folds: int = 4  # cross-conformal folds over compositions for the interval quantile
    folds: int = 5  # grouped cross-validation over compositions
    importance_repeats: int = 2
    importance_rows: int = 300  # a seeded sample of the rows: permutation importance over all 1,062 took 18 s
    # the size-effect law (features/indentation.py): ln P* = c0 + c1 * this column (the most d-rich
    # element's d electrons: metallic borides soften far more with load than covalent compounds);
    # P* searched within these bounds (N), which hold every compound's own best fit (0.007-1.06 N)
    size_effect_column: str = "max_valence_d"
    p_star_bounds_n: tuple[float, float] = (0.003, 3.0)
    # add the phase table's sourced HV1 of the catalogue's dense phases; it owns the load-independent
    # level of its compound (``_anchored_residuals``)
    anchors: bool = True


@dataclass(frozen=True)
class HardnessData:
    compositions: tuple[Composition, ...]
    load_n: np.ndarray
    hardness_gpa: np.ndarray
    # True for the phase table's HV1 anchors (features/data/phases.json), False for measured rows
    anchor: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        if len(self.anchor) != len(self.load_n):
            object.__setattr__(self, "anchor", np.zeros(len(self.load_n), dtype=bool))

    @property
    def groups(self) -> np.ndarray:
        """One group per composition (canonical key: ``TiB2`` and ``B2Ti`` are one group)."""
        return np.array([c.key for c in self.compositions])

    def subset(self, rows: np.ndarray) -> HardnessData:
        return HardnessData(
            tuple(self.compositions[i] for i in rows), self.load_n[rows], self.hardness_gpa[rows], self.anchor[rows]
        )


def with_phase_anchors(data: HardnessData) -> HardnessData:
    """The measured rows plus one row per catalogue phase: its HV1 (9.8 N) from the phase table,
    where the table's source gives a dense-polycrystal value at that load (``load_phase_hv1``)."""
    anchors = load_phase_hv1()
    formulas = [p for p in PHASES if p in anchors]
    return HardnessData(
        data.compositions + tuple(parse_formula(f) for f in formulas),
        np.concatenate([data.load_n, [anchors[f][1] for f in formulas]]),
        np.concatenate([data.hardness_gpa, [anchors[f][0] for f in formulas]]),
        np.concatenate([data.anchor, np.ones(len(formulas), dtype=bool)]),
    )


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
    """d ln H / d ln P with every composition's own mean removed (fixed effects): the power-law
    exponent the PSR law replaced, kept as the comparison figure of docs/science.md section 10."""
    codes = _codes(groups)
    x, y = _demean(log_load, codes), _demean(log_hardness, codes)
    denominator = float(x @ x)
    return float(x @ y) / denominator if denominator > 0 else 0.0


def _codes(groups: np.ndarray) -> np.ndarray:
    return np.unique(groups, return_inverse=True)[1]


def _demean(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``values`` minus the mean of their group (``codes``: 0..G-1 per row)."""
    return values - (np.bincount(codes, values) / np.bincount(codes))[codes]


def _multi_load(load: np.ndarray, codes: np.ndarray, min_ratio: float) -> np.ndarray:
    """Rows of compositions measured at loads at least ``min_ratio`` apart."""
    low, high = np.full(codes.max() + 1, np.inf), np.zeros(codes.max() + 1)
    np.minimum.at(low, codes, load)
    np.maximum.at(high, codes, load)
    return (high / low)[codes] >= min_ratio


def fit_size_effect(
    X: np.ndarray, hardness_gpa: np.ndarray, groups: np.ndarray, names: tuple[str, ...], config: HardnessConfig
) -> SizeEffectLaw:
    """Li & Bradt's PSR law (features/indentation.py) with ln P* = c0 + c1 x, c1 >= 0, x the
    composition column ``config.size_effect_column``: least squares within compositions on the
    compounds measured at loads 1.5x or more apart, over a grid bounded by ``config.p_star_bounds_n``."""
    j, k = names.index("load_n"), names.index(config.size_effect_column)
    rows = _multi_load(X[:, j], _codes(groups), 1.5)
    load, x, codes = X[rows, j], X[rows, k], _codes(groups[rows])
    z = _demean(np.log(hardness_gpa[rows]), codes)
    bounds = np.log(config.p_star_bounds_n)
    if not rows.any():  # no compound measured at two loads: the weakest size effect the bounds allow
        law = SizeEffectLaw(
            j, k, float(bounds[0]), 0.0, float(X[:, j].min()), float(np.exp(np.log(X[:, j]).mean())), 0.0
        )
        return replace(law, term_mean=float(law.log_factor(X).mean()))
    best: tuple[float, float, float] = (np.inf, 0.0, 0.0)
    for c1 in np.linspace(0.0, 1.5, 31):
        for c0 in np.linspace(bounds[0], bounds[1], 121):
            log_p_star = np.clip(c0 + c1 * x, *bounds)
            sse = float(((z - _demean(np.log(psr_factor(load, np.exp(log_p_star))), codes)) ** 2).sum())
            if sse < best[0]:
                best = (sse, float(c0), float(c1))
    _, c0, c1 = best
    law = SizeEffectLaw(
        load_column=j,
        class_column=k,
        log_p_star_intercept=c0,
        log_p_star_slope=c1,
        min_load_n=float(load.min()),
        reference_load_n=float(np.exp(np.log(X[:, j]).mean())),
        sigma_log_p_star=_p_star_scatter(load, z, x, codes, (c0, c1), bounds),
    )
    return replace(law, term_mean=float(law.log_factor(X).mean()))


def _p_star_scatter(
    load: np.ndarray, z: np.ndarray, x: np.ndarray, codes: np.ndarray, c: tuple[float, float], bounds: np.ndarray
) -> float:
    """Standard deviation, between compounds, of each compound's own best ln P* around c0 + c1 x
    (compounds measured at loads a factor 3 or more apart)."""
    grid = np.linspace(bounds[0], bounds[1], 121)
    wide = _multi_load(load, codes, 3.0)
    offsets = []
    for code in np.unique(codes[wide]):
        m = codes == code
        one = np.zeros(int(m.sum()), dtype=np.int64)
        sse = [float(((z[m] - _demean(np.log(psr_factor(load[m], np.exp(q))), one)) ** 2).sum()) for q in grid]
        offsets.append(grid[int(np.argmin(sse))] - (c[0] + c[1] * x[m][0]))
    return float(np.std(offsets)) if offsets else 0.0


def _load_baseline(X: np.ndarray, z: np.ndarray, law: SizeEffectLaw) -> LinearBaseline:
    """ln H = intercept + ln g(P / P*(x)): the load law fixed, the intercept the mean."""
    intercept = float(np.mean(z - law.log_factor(X)))
    return LinearBaseline(
        links=["log"],
        columns=[[]],
        transforms=[[]],
        coefficients=[[]],
        intercepts=[intercept],
        term_means=[[]],
        load_law=law.to_dict(),
    )


def _anchored_residuals(residual: np.ndarray, rows: Rows) -> np.ndarray:
    """The load-free residual (ln H0) of every row of an anchored compound set to its anchor's: the
    phase table's sourced HV1 of a dense polycrystal owns a catalogue phase's level; its measured
    rows at other loads (microstructure unknown) still fit the load law and calibrate the interval,
    and the compound keeps its number of rows, so its neighbours see the same tree structure."""
    out = residual.copy()
    for i in np.flatnonzero(~rows.measured):
        out[rows.groups == rows.groups[i]] = residual[i]
    return out


def _fit_forest(X: np.ndarray, r: np.ndarray, names: tuple[str, ...], config: HardnessConfig) -> CompiledForest:
    """ExtraTrees on the load-free residual (ln H0). The load columns are held constant while they
    are fitted, so no tree ever splits on them: the load dependence is the PSR law's alone."""
    blind = X.copy()
    blind[:, [names.index(c) for c in LOAD_COLUMNS]] = 0.0
    forest = ExtraTreesRegressor(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        max_features=config.max_features,
        random_state=config.seed,
        n_jobs=-1,
    ).fit(blind, r)
    return CompiledForest.from_trees([[e.tree_ for e in forest.estimators_]])


def _fit_on(rows: Rows, names: tuple[str, ...], config: HardnessConfig) -> ArmorModel:
    """Load law (measured rows only), baseline and correction trees (interval not yet calibrated)."""
    z, m = np.log(rows.hardness_gpa), rows.measured
    law = fit_size_effect(rows.X[m], rows.hardness_gpa[m], rows.groups[m], names, config)
    baseline = _load_baseline(rows.X, z, law)
    residual = _anchored_residuals(z - baseline.predict(rows.X)[:, 0], rows)
    r_mean, r_scale = float(residual.mean()), float(residual.std()) + 1e-12
    X = rows.X
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


@dataclass(frozen=True)
class Rows:
    """Feature rows with their hardness, composition group and whether measured (else an anchor)."""

    X: np.ndarray
    hardness_gpa: np.ndarray
    groups: np.ndarray
    measured: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray, data: HardnessData) -> Rows:
        return cls(X, data.hardness_gpa, data.groups, ~data.anchor)

    def take(self, index: np.ndarray) -> Rows:
        return Rows(*(a[index] for a in (self.X, self.hardness_gpa, self.groups, self.measured)))


def fit_model(rows: Rows, names: tuple[str, ...], config: HardnessConfig) -> ArmorModel:
    """Fit on every row; the conformal quantile comes from out-of-fold residuals of the measured rows
    (cross-conformal, ``config.calibration_folds`` folds over compositions), so every composition
    calibrates the interval once without the model it calibrates having seen it, and the served
    model has seen every measured compound. ``grouped_cv`` checks the coverage of exactly this."""
    residuals, spreads = [], []
    inner = GroupKFold(n_splits=config.calibration_folds, shuffle=True, random_state=config.seed)
    for fit_rows, cal_rows in inner.split(rows.X, groups=rows.groups):
        held_out = _fit_on(rows.take(fit_rows), names, config)
        cal = rows.take(cal_rows[rows.measured[cal_rows]])
        z, spread, _ = held_out.link_prediction(cal.X)
        residuals.append(np.log(cal.hardness_gpa) - z[:, 0])
        spreads.append(spread[:, 0] + np.asarray(held_out.baseline.half_width(cal.X))[:, 0])
    model = _fit_on(rows, names, config)
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
    rows: Rows,
    names: tuple[str, ...],
    config: HardnessConfig,
    progress: Callable[[str], None] = print,
    hard: set[str] | None = None,
) -> dict[str, Any]:
    """Out-of-fold predictions of the model, a mean predictor and ridge, on the same grouped folds;
    scored on the measured rows (the phase-table anchors train, they are not scored), and on the
    measured rows of the ``hard`` compositions alone."""
    n, y = len(rows.X), rows.hardness_gpa
    folds = composition_folds(rows.groups, config.folds, config.seed)
    oof = {name: np.zeros(n) for name in ("model", "mean", "ridge", "lower", "upper")}
    per_fold = []
    for k, (train, test) in enumerate(folds):
        fitted = rows.take(train)
        pred = fit_model(fitted, names, config).predict(rows.X[test])
        oof["model"][test], oof["lower"][test], oof["upper"][test] = (
            pred.values[:, 0],
            pred.lower[:, 0],
            pred.upper[:, 0],
        )
        oof["mean"][test] = y[train][fitted.measured].mean()
        ridge = _ridge(fitted.X, fitted.hardness_gpa, fitted.groups, config)
        oof["ridge"][test] = np.exp(ridge.predict(rows.X[test]))
        scored = test[rows.measured[test]]
        fold = _scores(y[scored], oof["model"][scored]) | {
            "rows": len(scored),
            "compositions": len(set(rows.groups[scored])),
        }
        per_fold.append(fold)
        progress(f"  fold {k + 1}/{config.folds}: MAE {fold['mae']:.2f} GPa on {fold['compositions']} compositions")
    m = rows.measured
    h = m & np.isin(rows.groups, sorted(hard or ()))
    on_hard: dict[str, Any] = {}
    if h.sum() > 1:
        on_hard = _scores(y[h], oof["model"][h]) | _interval_scores(
            y[h], oof["lower"][h], oof["upper"][h], oof["model"][h]
        )
    return {
        "model_on_hard_ceramics": on_hard | {"rows": int(h.sum())},
        "split": f"GroupKFold({config.folds}, shuffled, seed {config.seed}) over compositions",
        "rows": int(m.sum()),
        "compositions": len(set(rows.groups[m])),
        "anchors_in_training": int((~m).sum()),
        "model": _scores(y[m], oof["model"][m])
        | _interval_scores(y[m], oof["lower"][m], oof["upper"][m], oof["model"][m]),
        "mean_predictor": _scores(y[m], oof["mean"][m]),
        "ridge": _scores(y[m], oof["ridge"][m]),
        "per_fold": per_fold,
        "folds_disjoint_by_composition": all(not set(rows.groups[tr]) & set(rows.groups[te]) for tr, te in folds),
    }


def _interval_scores(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, value: np.ndarray) -> dict[str, float]:
    inside = (lower <= y) & (y <= upper)
    return {
        "coverage_95": float(inside.mean()),
        "mean_interval_width": float((upper - lower).mean()),
        "mean_relative_width": float(((upper - lower) / value).mean()),
    }


HARD_CERAMIC_ANIONS = frozenset({"B", "C", "N", "O"})
HARD_CERAMIC_MIN_GPA = 10.0


def hard_ceramic_groups(data: HardnessData) -> set[str]:
    """Compositions with boron, carbon, nitrogen or oxygen whose mean measured hardness is above
    10 GPa: the carbides, borides, nitrides and oxides an armor engineer asks about."""
    groups, measured = data.groups, ~data.anchor
    out = set()
    for key, composition in {g: c for g, c in zip(groups, data.compositions, strict=True)}.items():
        mine = (groups == key) & measured
        if (
            HARD_CERAMIC_ANIONS & set(composition.elements)
            and mine.any()
            and data.hardness_gpa[mine].mean() > HARD_CERAMIC_MIN_GPA
        ):
            out.add(key)
    return out


def held_out_group(rows: Rows, held_out: set[str], names: tuple[str, ...], config: HardnessConfig) -> dict[str, Any]:
    """The whole procedure fitted without a group of compositions, scored on that group's measured rows."""
    out = np.isin(rows.groups, sorted(held_out))
    pred = fit_model(rows.take(np.flatnonzero(~out)), names, config).predict(rows.X[out])
    test = rows.measured[out]
    y = rows.hardness_gpa[out][test]
    value, lower, upper = pred.values[test, 0], pred.lower[test, 0], pred.upper[test, 0]
    return (
        {"rows": int(test.sum()), "compositions": len(held_out)}
        | _scores(y, value)
        | _interval_scores(y, lower, upper, value)
    )


def in_data_widths(model: ArmorModel, rows: Rows) -> dict[str, Any]:
    """For compositions measured two or more times: the served model's 95 % interval width at each
    measured load against the spread (max - min) of that composition's measured values."""
    m = rows.measured
    pred = model.predict(rows.X[m])
    width = pred.upper[:, 0] - pred.lower[:, 0]
    groups, y = rows.groups[m], rows.hardness_gpa[m]
    keys, codes, counts = np.unique(groups, return_inverse=True, return_counts=True)
    high, low = np.full(len(keys), -np.inf), np.full(len(keys), np.inf)
    np.maximum.at(high, codes, y)
    np.minimum.at(low, codes, y)
    several = counts[codes] > 1
    spread = (high - low)[codes]
    return {
        "rows": int(several.sum()),
        "compositions": int((counts > 1).sum()),
        "share_no_wider_than_spread": float((width[several] <= spread[several]).mean()),
        "median_width_over_spread": float(np.median(width[several] / np.maximum(spread[several], 1e-9))),
    }


def train_hardness(
    data: HardnessData,
    config: HardnessConfig = HardnessConfig(),
    progress: Callable[[str], None] = print,
    evaluate: bool = True,
) -> TrainedModel:
    """Grouped CV of the whole procedure and the held-out hard ceramics (when ``evaluate``), then
    the served model on all rows (with the phase-table anchors when ``config.anchors``).
    ``files_extra["domain"]`` is the ``CompositionDomain`` (as a dict) the warnings are checked against."""
    data = with_phase_anchors(data) if config.anchors else data
    featurizer = FormulaFeaturizer()
    names = featurizer.schema.names
    rows = Rows.of(featurizer.transform(data.compositions, data.load_n), data)
    started = time.perf_counter()
    evaluation: dict[str, Any] = {}
    if evaluate:
        progress(f"[{FAMILY}] grouped {config.folds}-fold CV on {len(rows.X)} rows x {rows.X.shape[1]} features")
        hard = hard_ceramic_groups(data)
        evaluation = grouped_cv(rows, names, config, progress, hard)
        progress(f"[{FAMILY}] held out: {len(hard)} hard ceramics (B/C/N/O compounds above 10 GPa)")
        evaluation["held_out_hard_ceramics"] = held_out_group(rows, hard, names, config)
    model = fit_model(rows, names, config)
    progress(f"[{FAMILY}] trained in {time.perf_counter() - started:.1f} s")
    if evaluate:
        evaluation["in_data_widths"] = in_data_widths(model, rows)
    sample = np.random.default_rng(config.seed).permutation(len(rows.X))[: config.importance_rows]
    importance = permutation_importance(
        model, rows.X[sample], rows.hardness_gpa[sample, None], names, config.importance_repeats, config.seed
    )
    law = model.baseline.load_law or {}
    return TrainedModel(
        model=model,
        metrics={TARGETS[0]: _card_metrics(evaluation)} if evaluate else {},
        samples={
            "total": len(rows.X),
            "measured": int(rows.measured.sum()),
            "phase_table_anchors": int((~rows.measured).sum()),
            "compositions": len(set(rows.groups)),
            "training": len(rows.X),
            "calibration": int(rows.measured.sum()),  # cross-conformal: every measured row once, out of fold
            "test": evaluation.get("rows", 0),
        },
        importance=importance,
        feature_ranges=_feature_ranges(rows.X, names),
        config=config,
        card_extra=(
            {"evaluation": evaluation | {"published": PUBLISHED}, "dataset": DATASET, "size_effect_law": law}
            if evaluate
            else {"size_effect_law": law}
        ),
        files_extra={"domain": CompositionDomain.fit(data.compositions, rows.X, featurizer.schema).to_dict()},
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
