"""The free inputs of a design request as an optimiser's parameters, and a parameter set as the
complete request body a single route takes.

Composition: one weight in [0, 1] per free phase, normalised to fractions that sum to 1 and rounded
to ``FRACTION_DECIMALS`` (the body is what is evaluated, so rounding changes nothing the answer
says). Numeric inputs: a float between the request's bounds (log-scaled where the catalogue samples
the input on a log scale); numbers are rounded to ``SIGNIFICANT_DIGITS``. Categorical inputs: one of
the given levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

FRACTION_DECIMALS = 4
SIGNIFICANT_DIGITS = 5
COMPOSITION = "composition"


@dataclass(frozen=True)
class NumericVariable:
    block: str
    name: str
    low: float
    high: float
    log: bool

    @property
    def path(self) -> str:
        return f"{self.block}.{self.name}"

    def unit(self, value: float) -> float:
        """``value``'s position between the bounds, 0-1 (on the log scale where sampled so)."""
        if self.high == self.low:
            return 0.0
        if self.log:
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)


@dataclass(frozen=True)
class ChoiceVariable:
    block: str
    name: str
    levels: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"{self.block}.{self.name}"


def rounded(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    return float(f"{value:.{digits}g}")


def fractions(weights: list[float]) -> list[float]:
    """Weights to fractions rounded to FRACTION_DECIMALS that sum to 1 (the largest takes the
    rounding's remainder); all-zero weights share equally."""
    total = sum(weights)
    shares = [w / total for w in weights] if total > 0 else [1.0 / len(weights)] * len(weights)
    out = [round(s, FRACTION_DECIMALS) for s in shares]
    largest = int(np.argmax(out))
    out[largest] = round(1.0 - sum(v for i, v in enumerate(out) if i != largest), FRACTION_DECIMALS)
    return out


@dataclass(frozen=True)
class Space:
    """``template``: a complete body (fixed values, defaults elsewhere) the free values go into."""

    phases: tuple[str, ...]
    numeric: tuple[NumericVariable, ...]
    choices: tuple[ChoiceVariable, ...]
    template: dict[str, Any]

    @property
    def dimensions(self) -> int:
        return len(self.phases) + len(self.numeric) + len(self.choices)

    def distributions(self) -> dict[str, BaseDistribution]:
        # optuna is imported when a search starts, not with the service: ~13 MB in every API worker
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        out: dict[str, BaseDistribution] = {f"{COMPOSITION}.{p}": FloatDistribution(0.0, 1.0) for p in self.phases}
        out |= {v.path: FloatDistribution(v.low, v.high, log=v.log) for v in self.numeric}
        out |= {v.path: CategoricalDistribution(v.levels) for v in self.choices}
        return out

    def body(self, params: dict[str, Any]) -> dict[str, Any]:
        """The complete request body of one parameter set (a fresh dict)."""
        body = {k: dict(v) if isinstance(v, dict) else v for k, v in self.template.items()}
        if self.phases:
            shares = fractions([float(params[f"{COMPOSITION}.{p}"]) for p in self.phases])
            body[COMPOSITION] = {p: s for p, s in zip(self.phases, shares, strict=True) if s > 0}
        for numeric in self.numeric:
            value = min(max(rounded(float(params[numeric.path])), numeric.low), numeric.high)
            body[numeric.block][numeric.name] = value
        for choice in self.choices:
            body[choice.block][choice.name] = params[choice.path]
        return body

    def midpoint(self, levels: dict[str, str] | None = None) -> dict[str, Any]:
        """A body in the middle of the space (what validates the fixed values), with the first
        level of each free categorical input unless ``levels`` (path -> level) says otherwise."""
        params: dict[str, Any] = {f"{COMPOSITION}.{p}": 1.0 for p in self.phases}
        params |= {v.path: math.sqrt(v.low * v.high) if v.log else (v.low + v.high) / 2 for v in self.numeric}
        params |= {v.path: v.levels[0] for v in self.choices} | (levels or {})
        return self.body(params)

    def probes(self) -> list[dict[str, Any]]:
        """The midpoint with every level of every free categorical input: together they show the
        single route every fixed value and every free level."""
        return [self.midpoint()] + [self.midpoint({v.path: level}) for v in self.choices for level in v.levels[1:]]

    def unit(self, body: dict[str, Any]) -> np.ndarray:
        """A body's position in the unit cube of the free inputs (distances between candidates);
        a categorical input counts 0 or 1 by level index over its levels."""
        composition = body[COMPOSITION]
        position = [float(composition.get(p, 0.0)) for p in self.phases]
        position += [v.unit(float(body[v.block][v.name])) for v in self.numeric]
        position += [v.levels.index(body[v.block][v.name]) / max(len(v.levels) - 1, 1) for v in self.choices]
        return np.asarray(position, dtype=np.float64)
