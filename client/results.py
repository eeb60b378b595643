"""Typed answers of the service: what ``ArmorClient`` and ``AsyncArmorClient`` return.

Each keeps the JSON it was read from (``body``), so a field the types do not name is still at hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Value:
    """One predicted property: its value, unit, 95 % interval and quality grade."""

    value: float
    unit: str
    low: float | None = None
    high: float | None = None
    quality: str | None = None

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Value:
        interval = entry.get("confidence_interval") or (None, None)
        return cls(float(entry["value"]), str(entry["unit"]), interval[0], interval[1], entry.get("prediction_quality"))


def _values(predictions: Mapping[str, Any]) -> dict[str, Value]:
    return {target: Value.from_json(entry) for target, entry in predictions.items()}


@dataclass(frozen=True)
class Prediction:
    """A material's answer (mechanical or ballistic): ``prediction["density"].value``."""

    values: dict[str, Value]
    warnings: tuple[str, ...]
    model: str = field(metadata={"doc": "tag of the model that answered"})
    cached: bool
    body: dict[str, Any] = field(repr=False)

    def __getitem__(self, target: str) -> Value:
        return self.values[target]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Prediction:
        info = body.get("model_info") or {}
        model = f"{info.get('name')}:{info.get('version')}" if info else ""
        warnings = tuple(body.get("warnings") or ())
        return cls(_values(body["predictions"]), warnings, model, bool(body.get("cached")), body)


@dataclass(frozen=True)
class HardnessAtLoad:
    load_n: float
    hardness: Value


@dataclass(frozen=True)
class HardnessPrediction:
    """A formula's Vickers hardness at each requested load, in the order asked."""

    formula: str
    loads: tuple[HardnessAtLoad, ...]
    warnings: tuple[str, ...]
    model: str
    body: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> HardnessPrediction:
        loads = tuple(
            HardnessAtLoad(float(p["load_n"]), Value.from_json(p["vickers_hardness"])) for p in body["predictions"]
        )
        info = body.get("model_info") or {}
        model = f"{info.get('name')}:{info.get('version')}" if info else ""
        return cls(str(body["formula"]), loads, tuple(body.get("warnings") or ()), model, body)


@dataclass(frozen=True)
class RowError:
    status: int
    message: str


@dataclass(frozen=True)
class BatchRow:
    """One material of a batch, by its position (``row``, from 0): its values, or its error."""

    row: int
    values: dict[str, Value] | None
    error: RowError | None
    warnings: tuple[str, ...]
    body: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> BatchRow:
        if "error" in item:
            error = RowError(int(item["error"]["status"]), str(item["error"]["message"]))
            return cls(int(item["row"]), None, error, (), item)
        return cls(int(item["row"]), _values(item["predictions"]), None, tuple(item.get("warnings") or ()), item)
