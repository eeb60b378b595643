"""The physics part of every model: links, term transforms, and the sign-constrained fit of the
baseline coefficients (the relations themselves are in ``features.targets``).

Why a sign-constrained least-squares fit (``scipy.optimize.lsq_linear`` with bounds) and not a
fixed coefficient: the reference gives ranges (Spriggs b 2-4 for modulus, 4-9 for strength) and
measured data decide where in them a material sits; the sign is what physics fixes, so the sign
is the constraint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.indentation import SizeEffectLaw
from features.targets import BASELINES, NUISANCE_COLUMNS, Baseline

TRANSFORMS = {
    "identity": lambda x: x,
    "log": lambda x: np.log(np.maximum(x, 1e-12)),
    "log1m": lambda x: np.log(np.maximum(1.0 - x, 1e-12)),  # log(1 - x)
}
LOGIT_EPS = 1e-4  # probabilities are clipped to [eps, 1 - eps] before the logit
LOGIT_EDGE = float(np.log((1 - LOGIT_EPS) / LOGIT_EPS))


def link(name: str, y: np.ndarray) -> np.ndarray:
    if name == "log":
        return TRANSFORMS["log"](y)
    p = np.clip(y, LOGIT_EPS, 1.0 - LOGIT_EPS)
    return np.log(p / (1.0 - p))


def link_all(links: list[str], Y: np.ndarray) -> np.ndarray:
    """(n, O) every target column in its link space (the inverse lives in ArmorModel._to_units)."""
    return np.column_stack([link(name, Y[:, o]) for o, name in enumerate(links)])


@dataclass
class LinearBaseline:
    """Per target: the link, the term columns, transforms and fitted coefficients, the intercept.
    The per-target lists (what is stored) are compiled at construction into one gather, one
    transform pass and one matrix product for all targets, so a single-row call stays cheap."""

    links: list[str]
    columns: list[list[int]]
    transforms: list[list[str]]
    coefficients: list[list[float]]
    intercepts: list[float]
    term_means: list[list[float]]  # mean of each transformed term on the training rows (contribution origin)
    # the hardness family's indentation size effect on its one target (features/indentation.py)
    load_law: dict | None = None

    def __post_init__(self) -> None:
        self.compile()

    def compile(self) -> None:
        outputs = [o for o, cols in enumerate(self.columns) for _ in cols]
        self._cols = np.array([j for cols in self.columns for j in cols], dtype=np.int64)
        self._outputs = np.array(outputs, dtype=np.int64)
        kinds = [t for ts in self.transforms for t in ts]
        self._log = np.array([k == "log" for k in kinds], dtype=bool)
        self._log1m = np.array([k == "log1m" for k in kinds], dtype=bool)
        self._beta = np.array([b for bs in self.coefficients for b in bs], dtype=np.float64)
        self._means = np.array([m for ms in self.term_means for m in ms], dtype=np.float64)
        self._matrix = np.zeros((len(self._cols), len(self.links)))
        self._matrix[np.arange(len(self._cols)), self._outputs] = self._beta
        self._intercepts = np.asarray(self.intercepts, dtype=np.float64)
        self._base = self._intercepts + self._means @ self._matrix
        self._law = SizeEffectLaw(**self.load_law) if self.load_law else None
        if self._law is not None:
            self._base = self._base + self._law.term_mean

    def all_terms(self, X: np.ndarray) -> np.ndarray:
        """(n, K) every target's transformed terms, side by side."""
        T = X[:, self._cols].astype(np.float64, copy=True)
        T[:, self._log] = TRANSFORMS["log"](T[:, self._log])
        T[:, self._log1m] = TRANSFORMS["log1m"](T[:, self._log1m])
        return T

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n, O) baseline in link space."""
        # summed term by term, not with a matrix product: BLAS blocks a product differently for 1
        # and for N rows, and a material must get the same answer (to the last bit) alone and in a batch
        out = self._intercepts + (self.all_terms(X)[:, :, None] * self._matrix).sum(axis=1)
        if self._law is not None:
            out[:, 0] += self._law.log_factor(X)
        return out

    def half_width(self, X: np.ndarray) -> np.ndarray | float:
        """Link-space interval half-width the physics terms add (the load law's), else 0."""
        if self._law is None:
            return 0.0
        out = np.zeros((len(X), len(self.links)))
        out[:, 0] = self._law.half_width(X)
        return out

    @property
    def base(self) -> np.ndarray:
        """(O,) the baseline at the training mean of every term: where contributions start."""
        return self._base

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, F, O) per-column contributions in link space about the training mean of the terms."""
        centred = (self.all_terms(X) - self._means) * self._beta  # (n, K)
        out = np.zeros((len(X), X.shape[1], len(self.links)))
        for k, (j, o) in enumerate(zip(self._cols, self._outputs, strict=True)):  # K is a handful of terms
            out[:, j, o] += centred[:, k]
        if self._law is not None:
            out[:, self._law.load_column, 0] += self._law.log_factor(X) - self._law.term_mean
        return out

    def to_dict(self) -> dict:
        return dict(
            links=self.links,
            columns=self.columns,
            transforms=self.transforms,
            coefficients=self.coefficients,
            intercepts=self.intercepts,
            term_means=self.term_means,
        ) | ({"load_law": self.load_law} if self.load_law else {})


def _fit_one(
    spec: Baseline, X: np.ndarray, z: np.ndarray, names: list[str], nuisance: np.ndarray
) -> tuple[list[float], float, list]:
    from scipy.optimize import lsq_linear  # training only: serving processes never import scipy.optimize

    columns = [names.index(t.column) for t in spec.terms]
    terms = np.column_stack([TRANSFORMS[t.transform](X[:, j]) for t, j in zip(spec.terms, columns, strict=True)])
    fixed = np.array([t.fixed if t.fixed is not None else 0.0 for t in spec.terms])
    free = np.array([t.fixed is None for t in spec.terms])
    residual = z - terms @ fixed
    beta = fixed.copy()
    if free.any():
        low = [0.0 if t.sign > 0 else -np.inf for t in spec.terms if t.fixed is None]
        high = [0.0 if t.sign < 0 else np.inf for t in spec.terms if t.fixed is None]
        r, T = _partial_out(X[:, nuisance], residual, terms[:, free])
        beta[free] = lsq_linear(T, r, bounds=(low, high)).x
    intercept = float(np.mean(residual - terms[:, free] @ beta[free]))
    return beta.tolist(), intercept, terms.mean(axis=0).tolist()


def _partial_out(nuisance: np.ndarray, residual: np.ndarray, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robinson's partially linear estimator: remove from the target and from every term what
    the processing conditions predict (out-of-fold, so the nuisance model cannot overfit), so
    that a trend coefficient is not biased by a processing effect correlated with its input (in
    the reference data porosity falls as the sintering temperature rises)."""
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.model_selection import cross_val_predict

    both = np.column_stack([residual, terms])
    if nuisance.shape[1] == 0:
        return residual - residual.mean(), terms - terms.mean(axis=0)
    # one job: threads sum the trees' predictions in a varying order, and a 1e-14 difference in a
    # coefficient changes the correction trees downstream (the same data must give the same model)
    forest = ExtraTreesRegressor(n_estimators=20, max_depth=8, min_samples_leaf=20, random_state=0, n_jobs=1)
    fitted = cross_val_predict(forest, nuisance, both, cv=3)
    out = both - fitted
    return out[:, 0], out[:, 1:]


def fit(targets: tuple[str, ...], X: np.ndarray, Y: np.ndarray, names: tuple[str, ...]) -> LinearBaseline:
    """Fit every target's baseline on the rows where the target is present."""
    names_list = list(names)
    nuisance = np.array([names_list.index(c) for c in NUISANCE_COLUMNS if c in names_list], dtype=int)
    fitted = LinearBaseline([], [], [], [], [], [])  # compiled again below, once filled
    for o, target in enumerate(targets):
        spec, rows = BASELINES[target], ~np.isnan(Y[:, o])
        beta, intercept, means = _fit_one(spec, X[rows], link(spec.link, Y[rows, o]), names_list, nuisance)
        fitted.links.append(spec.link)
        fitted.columns.append([names_list.index(t.column) for t in spec.terms])
        fitted.transforms.append([t.transform for t in spec.terms])
        fitted.coefficients.append(beta)
        fitted.intercepts.append(intercept)
        fitted.term_means.append(means)
    fitted.compile()
    return fitted


def monotone_constraints(
    target: str, names: tuple[str, ...], dependencies: dict[str, dict[str, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """sklearn ``monotonic_cst`` for the correction trees of one target, and a mask of the columns
    the trees may use: a column carrying two of the target's trends in opposite directions is left
    out (no constraint could keep both)."""
    trends = BASELINES[target].trends
    wanted: dict[str, set[int]] = {}
    for input_name, direction in trends.items():
        for column, sign in dependencies.get(input_name, {}).items():
            wanted.setdefault(column, set()).add(direction * sign)
    constraints = np.zeros(len(names), dtype=np.int64)
    usable = np.ones(len(names), dtype=bool)
    for j, name in enumerate(names):
        signs = wanted.get(name, set())
        if len(signs) == 1:
            constraints[j] = signs.pop()
        elif len(signs) > 1:
            usable[j] = False
    return np.where(usable, constraints, 0), usable
