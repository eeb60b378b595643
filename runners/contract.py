"""What crosses the API <-> runner boundary, defined once.

Packed row (``pack``/``unpack``), O targets and F features:

    tag id | values (O) | lower (O) | upper (O) | base (O) | contributions (F*O, only when explained)

The tag id (crc32 of the model tag that answered, exact in a float64) tells the API, with every
answer, which model produced it: a runner restarted on a newer model is noticed at its first
answer, and its card fetched, instead of being labelled with the card the API saw first.

``RowKind``: what a call's rows are and how the runner answers them (contributions or not, through
the prediction cache or past it, feature rows or material rows): one value every client, the
socket hop and the runner core take, so a new way of asking is one field here, not an argument
threaded through each of them.

``ModelCard``: what the API reports about a model, built by the runner from the registry (the
API never reads the model store). ``CardReply``: the runner's answer to "which model is this
version?", a card or the reason there is none.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


def tag_id(tag: str) -> float:
    return float(zlib.crc32(tag.encode()))


@dataclass
class Unpacked:
    tag_id: np.ndarray  # (n,)
    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    base: np.ndarray
    contributions: np.ndarray | None  # (n, F, O)


def pack(
    tag: str,
    values: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    base: np.ndarray,
    contributions: np.ndarray | None,
) -> np.ndarray:
    n = values.shape[0]
    parts = [np.full((n, 1), tag_id(tag)), values, lower, upper, np.broadcast_to(base, values.shape)]
    if contributions is not None:
        parts.append(contributions.reshape(n, -1))
    return np.hstack(parts)


def unpack(packed: np.ndarray, n_targets: int, n_features: int) -> Unpacked:
    o, rest = n_targets, packed[:, 1:]
    contributions = rest[:, 4 * o :].reshape(-1, n_features, o) if rest.shape[1] > 4 * o else None
    return Unpacked(
        packed[:, 0], rest[:, :o], rest[:, o : 2 * o], rest[:, 2 * o : 3 * o], rest[:, 3 * o : 4 * o], contributions
    )


@dataclass(frozen=True)
class RowKind:
    """What a runner call's rows are and how they are answered.

    ``explain``: per-feature contributions in the packed answer; ``cache`` False: past the
    runner's prediction cache (a batch screen's rows, which would only evict the interactive
    traffic's entries); ``materials``: material rows (features.batch.MaterialBatch.to_rows), which
    the runner featurises, not feature rows."""

    explain: bool = False
    cache: bool = True
    materials: bool = False


@dataclass(frozen=True)
class ModelCard:
    tag: str
    name: str
    version: str
    family: str
    targets: tuple[str, ...]
    created_at: str
    training_samples: int
    metrics: dict[str, dict[str, float]]
    feature_names: tuple[str, ...]
    feature_categories: tuple[str, ...]
    feature_ranges: dict[str, list[float]]
    feature_importance: dict[str, float]
    metadata: dict[str, Any] = field(default_factory=dict)  # everything else the registry stored

    @property
    def tag_id(self) -> float:
        return tag_id(self.tag)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelCard:
        return cls(
            **{
                **raw,
                "targets": tuple(raw["targets"]),
                "feature_names": tuple(raw["feature_names"]),
                "feature_categories": tuple(raw["feature_categories"]),
            }
        )


@dataclass(frozen=True)
class CardReply:
    """A card, or why there is none: ``not_found`` (with the available tags) or ``invalid``."""

    card: ModelCard | None = None
    error: str | None = None  # "not_found" | "invalid"
    message: str = ""
    available: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "card": self.card.to_dict() if self.card else None,
            "error": self.error,
            "message": self.message,
            "available": list(self.available),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CardReply:
        card = ModelCard.from_dict(raw["card"]) if raw.get("card") else None
        return cls(
            card=card, error=raw.get("error"), message=raw.get("message", ""), available=tuple(raw.get("available", ()))
        )
