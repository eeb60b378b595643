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

from features.targets import BASELINES, NUISANCE_COLUMNS, Baseline

TRANSFORMS = {
    "identity": lambda x: x,
    "log": lambda x: np.log(np.maximum(x, 1e-12)),
    "log1m": lambda x: np.log(np.maximum(1.0 - x, 1e-12)),  # log(1 - x)
}
LOGIT_EPS = 1e-4  # probabilities are clipped to [eps, 1 - eps] before the logit


def link(name: str, y: np.ndarray) -> np.ndarray:
    if name == "log":
        return np.log(np.maximum(y, 1e-12))
    p = np.clip(y, LOGIT_EPS, 1.0 - LOGIT_EPS)
    return np.log(p / (1.0 - p))


def inverse_link(name: str, z: np.ndarray) -> np.ndarray:
    return np.exp(z) if name == "log" else 1.0 / (1.0 + np.exp(-z))


@dataclass
class LinearBaseline:
    """Per target: the link, the term columns, transforms and fitted coefficients, the intercept."""

    links: list[str]
    columns: list[list[int]]
    transforms: list[list[str]]
    coefficients: list[list[float]]
    intercepts: list[float]
    term_means: list[list[float]]  # mean of each transformed term on the training rows (contribution origin)

    def terms(self, X: np.ndarray, o: int) -> np.ndarray:
        """(n, K) transformed terms of target o."""
        if not self.columns[o]:
            return np.zeros((len(X), 0))
        return np.column_stack([TRANSFORMS[t](X[:, j]) for j, t in zip(self.columns[o], self.transforms[o],
                                                                            strict=True)])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n, O) baseline in link space."""
        return np.column_stack([self.intercepts[o] + self.terms(X, o) @ np.asarray(self.coefficients[o])
                                for o in range(len(self.links))])

    def contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, F, O) per-column contributions in link space about the training mean, and (O,) their base."""
        n, o_count = len(X), len(self.links)
        out, base = np.zeros((n, X.shape[1], o_count)), np.zeros(o_count)
        for o in range(o_count):
            beta, means = np.asarray(self.coefficients[o]), np.asarray(self.term_means[o])
            terms = self.terms(X, o)
            for k, j in enumerate(self.columns[o]):
                out[:, j, o] += beta[k] * (terms[:, k] - means[k])
            base[o] = self.intercepts[o] + float(beta @ means) if len(beta) else self.intercepts[o]
        return out, base

    def to_dict(self) -> dict:
        return dict(links=self.links, columns=self.columns, transforms=self.transforms,
                    coefficients=self.coefficients, intercepts=self.intercepts, term_means=self.term_means)


def _fit_one(spec: Baseline, X: np.ndarray, z: np.ndarray, names: list[str],
             nuisance: np.ndarray) -> tuple[list[float], float, list]:
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
    forest = ExtraTreesRegressor(n_estimators=20, max_depth=8, min_samples_leaf=20, random_state=0, n_jobs=-1)
    fitted = cross_val_predict(forest, nuisance, both, cv=3)
    out = both - fitted
    return out[:, 0], out[:, 1:]


def fit(targets: tuple[str, ...], X: np.ndarray, Y: np.ndarray, names: tuple[str, ...]) -> LinearBaseline:
    """Fit every target's baseline on the rows where the target is present."""
    names_list = list(names)
    nuisance = np.array([names_list.index(c) for c in NUISANCE_COLUMNS if c in names_list], dtype=int)
    fitted = LinearBaseline([], [], [], [], [], [])
    for o, target in enumerate(targets):
        spec, rows = BASELINES[target], ~np.isnan(Y[:, o])
        beta, intercept, means = _fit_one(spec, X[rows], link(spec.link, Y[rows, o]), names_list, nuisance)
        fitted.links.append(spec.link)
        fitted.columns.append([names_list.index(t.column) for t in spec.terms])
        fitted.transforms.append([t.transform for t in spec.terms])
        fitted.coefficients.append(beta)
        fitted.intercepts.append(intercept)
        fitted.term_means.append(means)
    return fitted


def monotone_constraints(target: str, names: tuple[str, ...], dependencies: dict[str, dict[str, int]]
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
