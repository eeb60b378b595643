"""What the request path hands the log (``Entry``: references only, nothing parsed or serialised
there) and the row the writer makes of it (``Row``), off the request path."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

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


class Entry(NamedTuple):
    """One answered prediction as the request path has it. ``body``: the rendered answer (bytes,
    single and hardness routes) or a /batch row's outcome (a dict). A tuple of plain values (the
    material as JSON bytes, or None when its response key's columns are known): the collector
    stops tracking it, so a queue of them costs the garbage collections nothing."""

    ts: float  # unix time, s
    family: str
    kind: str  # "single" (hardness included) or "batch"
    # the canonical form (api/prediction/keys.py; hardness: formula and loads), as a dict or as
    # JSON with sorted keys; None: the RowMaker knows the entry's key
    material: dict[str, Any] | bytes | None
    model_tag: str
    body: bytes | dict[str, Any]
    cached: bool
    latency_ms: float | None  # a /batch row: None (the request's time is not a row's)
    api_key_id: str | None = None
    request_id: str | None = None
    options: tuple[bool, bool] = (True, False)  # include_uncertainty, include_feature_importance
    key: str | None = None  # the response key: answers under one key give the same columns


class Row(NamedTuple):
    """One row of the ``predictions`` table (JSON columns as text, so both databases store the
    same), in the order of ``COLUMNS`` (a tuple: the drivers take it as it is)."""

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


def material_key(family: str, material: dict[str, Any]) -> str:
    """The material's key in the log: a short digest of its family and canonical form (one
    material, one key, whichever way the request spelt it)."""
    return _digest(family, orjson.dumps(material, option=orjson.OPT_SORT_KEYS))


def _digest(family: str, canonical: bytes) -> str:
    return hashlib.blake2b(family.encode() + b"\0" + canonical, digest_size=12).hexdigest()


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


@dataclass(frozen=True, slots=True)
class Answered:
    """The columns an answer gives, the same for every answer under one response key."""

    material_key: str
    material: str
    outputs: str
    warnings: str
    n_warnings: int
    options: str


def canonical_json(material: dict[str, Any]) -> bytes:
    return orjson.dumps(material, option=orjson.OPT_SORT_KEYS)


def answered(entry: Entry) -> Answered:
    if entry.material is None:
        raise ValueError("an entry without its material")
    body = orjson.loads(entry.body) if isinstance(entry.body, bytes) else entry.body
    warnings = list(body.get("warnings") or [])
    material = entry.material if isinstance(entry.material, bytes) else canonical_json(entry.material)
    return Answered(
        _digest(entry.family, material),
        material.decode(),
        orjson.dumps(outputs(body)).decode(),
        orjson.dumps(warnings).decode(),
        len(warnings),
        orjson.dumps(dict(zip(OPTIONS, entry.options, strict=True))).decode(),
    )


def to_row(entry: Entry, found: Answered | None = None) -> Row:
    """``found``: the entry's columns made before for another answer of its response key."""
    a = found or answered(entry)
    return Row(
        entry.ts,
        entry.family,
        entry.kind,
        a.material_key,
        a.material,
        entry.model_tag,
        a.outputs,
        a.warnings,
        a.n_warnings,
        entry.cached,
        entry.latency_ms,
        entry.api_key_id,
        entry.request_id,
        a.options,
    )


class RowMaker:
    """Rows of entries; an answer's columns are made once per response key (the key holds the
    material, the model and the options): a repeat, most of the traffic, costs a lookup. Two
    generations of ``MEMO_KEYS`` keys: when the new one is full it becomes the old one."""

    MEMO_KEYS = 4096

    def __init__(self, memo_keys: int = MEMO_KEYS) -> None:
        self.memo_keys = memo_keys
        self._memo: dict[str, Answered] = {}
        self._old: dict[str, Answered] = {}

    def knows(self, key: str) -> bool:
        return key in self._memo or key in self._old

    def row(self, entry: Entry) -> Row | None:
        """None: an entry without its material whose key was forgotten meanwhile (two
        generations of new keys between its answer and its write)."""
        if entry.key is None:
            return to_row(entry)
        found = self._memo.get(entry.key) or self._old.get(entry.key)
        if found is None:
            if entry.material is None:
                return None
            if len(self._memo) >= self.memo_keys:
                self._old, self._memo = self._memo, {}
            found = self._memo[entry.key] = answered(entry)
        return to_row(entry, found)
