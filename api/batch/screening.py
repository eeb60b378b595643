"""Screening a batch: keep the rows whose predictions meet every ``where`` constraint, rank them by
one target (or a bound of its 95 % interval) and keep the ``top`` K, best first.

A quantity is a target of the family (its predicted value) or ``<target>_low`` / ``<target>_high``
(the interval's bounds, when the batch includes uncertainty): "v50_velocity_low >= 850" screens on
the conservative end of the interval. Memory: with ``top`` a heap of K rows, without it every
matched row (their compact results, not the input).
"""

from __future__ import annotations

import heapq
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from api.prediction.schemas import WHERE_PATTERN, BatchOptions
from api.transport.errors import InvalidInput
from features.catalogue import TARGETS

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_CONSTRAINT = re.compile(WHERE_PATTERN)  # the document states the same pattern
_BOUNDS = {"_low": 0, "_high": 1}


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(f"invalid request: {field_name}: {message}", [{"field": field_name, "message": message}])


@dataclass(frozen=True)
class Quantity:
    """A target's value, or one bound of its interval, read from a row's predictions."""

    target: str
    bound: int | None  # None: the value; 0: low; 1: high

    def of(self, predictions: dict[str, Any]) -> float:
        entry = predictions[self.target]
        return float(entry["value"] if self.bound is None else entry["confidence_interval"][self.bound])


def quantity(name: str, family: str, with_interval: bool, field_name: str) -> Quantity:
    targets = TARGETS[family]
    if name in targets:
        return Quantity(name, None)
    for suffix, bound in _BOUNDS.items():
        target = name.removesuffix(suffix)
        if name.endswith(suffix) and target in targets:
            if not with_interval:
                raise _invalid(field_name, f"{name!r} is an interval bound: it needs include_uncertainty true")
            return Quantity(target, bound)
    raise _invalid(field_name, f"unknown quantity {name!r}; known: {known_quantities(family)}")


def known_quantities(family: str) -> list[str]:
    """What rank_by and where may name: the family's targets and their interval bounds."""
    targets = TARGETS[family]
    return [*targets, *(f"{t}{s}" for t in targets for s in _BOUNDS)]


@dataclass(frozen=True)
class Constraint:
    quantity: Quantity
    compare: Callable[[float, float], bool]
    limit: float

    def met(self, predictions: dict[str, Any]) -> bool:
        return self.compare(self.quantity.of(predictions), self.limit)


def constraint(text: str, family: str, with_interval: bool) -> Constraint:
    """``"density <= 3.3"`` to a Constraint; a malformed one or an unknown quantity is a 422."""
    found = _CONSTRAINT.match(text)
    if found is None:
        raise _invalid("where", f"{text!r} is not '<quantity> <op> <number>' with op one of {list(_OPERATORS)}")
    name, op, limit = found.groups()
    return Constraint(quantity(name, family, with_interval, "where"), _OPERATORS[op], float(limit))


@dataclass
class Screen:
    """Collects predicted rows (``offer``) and returns the matched ones best first (``ranked``)."""

    constraints: list[Constraint]
    rank_by: Quantity | None
    descending: bool
    top: int | None
    matched: int = 0
    _kept: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def from_options(cls, options: BatchOptions, family: str) -> Screen | None:
        """None when the options ask for no screening (every row comes back in input order)."""
        if options.rank_by is None and not options.where and options.top is None:
            return None
        if options.top is not None and options.rank_by is None:
            raise _invalid("top", "top needs rank_by (which rows are the best?)")
        with_interval = options.include_uncertainty
        rank_by = None if options.rank_by is None else quantity(options.rank_by, family, with_interval, "rank_by")
        constraints = [constraint(text, family, with_interval) for text in options.where]
        return cls(constraints, rank_by, options.order == "descending", options.top)

    def offer(self, row: dict[str, Any]) -> None:
        predictions = row["predictions"]
        if not all(c.met(predictions) for c in self.constraints):
            return
        self.matched += 1
        score = 0.0 if self.rank_by is None else self.rank_by.of(predictions)
        # heap of the worst kept first: the best have the largest key; ties keep the earlier row
        entry = (score if self.descending else -score, -row["row"], row)
        if self.top is None:
            self._kept.append(entry)
        elif len(self._kept) < self.top:
            heapq.heappush(self._kept, entry)
        elif entry[:2] > self._kept[0][:2]:
            heapq.heapreplace(self._kept, entry)

    def ranked(self) -> Iterator[dict[str, Any]]:
        if self.rank_by is None:  # constraints only: input order
            return (row for _, _, row in self._kept)
        return (row for _, _, row in sorted(self._kept, key=lambda e: e[:2], reverse=True))
