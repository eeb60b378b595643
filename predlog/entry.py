"""What the request path hands the log (``Entry``: references only, nothing parsed or serialised
there) and the row the writer makes of it (``Row``), off the request path."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

COLUMNS = (
    "ts",
    "family",
    "kind",
    "material_key",
    "material",
    "model_tag",
    "outputs",
    "warnings",
    "n_warnings",
    "cached",
    "latency_ms",
    "api_key_id",
    "request_id",
    "options",
)

OPTIONS = ("include_uncertainty", "include_feature_importance")  # the answer options a response key holds
Interval = list[float | None]  # value, lower, upper (no interval asked for: None, None)


def api_key_id(key: bytes) -> str:
    """The id an API key is logged under: the first 12 hex digits of its SHA-256 (the key itself
    is never logged; its id tells keys apart in the log)."""
    return hashlib.sha256(key).hexdigest()[:12]


@dataclass(slots=True)
class Entry:
    """One answered prediction as the request path has it. ``body``: the rendered answer (bytes,
    single and hardness routes) or a /batch row's outcome (a dict)."""

    ts: float  # unix time, s
    family: str
    kind: str  # "single" (hardness included) or "batch"
    material: dict[str, Any]  # the canonical form (api/prediction/keys.py; hardness: formula and loads)
    model_tag: str
    body: bytes | dict[str, Any]
    cached: bool
    latency_ms: float | None  # a /batch row: None (the request's time is not a row's)
    api_key_id: str | None = None
    request_id: str | None = None
    options: tuple[bool, bool] = (True, False)  # include_uncertainty, include_feature_importance


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the ``predictions`` table (JSON columns as text, so both databases store the same)."""

    ts: float
    family: str
    kind: str
    material_key: str
    material: str
    model_tag: str
    outputs: str
    warnings: str
    n_warnings: int
    cached: bool
    latency_ms: float | None
    api_key_id: str | None
    request_id: str | None
    options: str = "{}"  # JSON: include_uncertainty, include_feature_importance

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in COLUMNS)


def material_key(family: str, material: dict[str, Any]) -> str:
    """The material's key in the log: a short digest of its canonical form (one material, one key,
    whichever way the request spelt it)."""
    canonical = orjson.dumps({"family": family, "material": material}, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=12).hexdigest()


def _interval(entry: dict[str, Any]) -> Interval:
    interval = entry.get("confidence_interval") or [None, None]
    return [entry["value"], interval[0], interval[1]]


def outputs(body: dict[str, Any]) -> dict[str, Interval]:
    """Target -> [value, lower, upper] of an answer's body; hardness: one per load, named
    ``vickers_hardness@<load> N``."""
    predictions = body.get("predictions")
    if isinstance(predictions, list):  # hardness: one entry per load
        found: dict[str, Interval] = {}
        for at_load in predictions:
            for target, entry in at_load.items():
                if target != "load_n":
                    found[f"{target}@{at_load['load_n']:g} N"] = _interval(entry)
        return found
    return {target: _interval(entry) for target, entry in (predictions or {}).items()}


def to_row(entry: Entry) -> Row:
    body = orjson.loads(entry.body) if isinstance(entry.body, bytes) else entry.body
    warnings = list(body.get("warnings") or [])
    return Row(
        entry.ts,
        entry.family,
        entry.kind,
        material_key(entry.family, entry.material),
        orjson.dumps(entry.material, option=orjson.OPT_SORT_KEYS).decode(),
        entry.model_tag,
        orjson.dumps(outputs(body)).decode(),
        orjson.dumps(warnings).decode(),
        len(warnings),
        entry.cached,
        entry.latency_ms,
        entry.api_key_id,
        entry.request_id,
        orjson.dumps(dict(zip(OPTIONS, entry.options, strict=True))).decode(),
    )
