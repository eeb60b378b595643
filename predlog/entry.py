"""What the request path hands the log (``Entry``: nothing parsed there; an answer computed for
the request comes with its logged columns, made from its body before it was rendered, an answer
from a cache as its rendered bytes or as a reference) and what the writer makes of it, off the
request path: the answer's columns (``Answer``, stored once per response key and model) and the
request's row that refers to it (``Row``)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

OPTIONS = ("include_uncertainty", "include_feature_importance")  # the answer options a response key holds
V = TypeVar("V")
Interval = list[float | None]  # value, lower, upper (no interval asked for: None, None)
# An answer's logged columns as JSON text, made where the answer was computed, from its body before
# it was rendered (``columns``): outputs, warnings and their count. A plain tuple: the hand-over's
# pickle writes it in C (predlog/wire.py), where a NamedTuple goes through Python.
Columns = tuple[str, str, int]


def api_key_id(key: bytes) -> str:
    """The id an API key is logged under: the first 12 hex digits of its SHA-256 (the key itself
    is never logged; its id tells keys apart in the log)."""
    return hashlib.sha256(key).hexdigest()[:12]


class Entry(NamedTuple):
    """One answered prediction as the request path has it. ``body``: an answer computed for this
    request, its ``Columns`` (the writer then parses nothing); an answer from a cache, as rendered
    (bytes, single and hardness routes); or a /batch row's outcome (a dict). A tuple of plain values (the
    material as JSON bytes, or None when its response key's columns are known): the collector
    stops tracking it, so a queue of them costs the garbage collections nothing."""

    ts: float  # unix time, s
    family: str
    kind: str  # "single" (hardness included) or "batch"
    # the canonical form (api/prediction/keys.py; hardness: formula and loads), as a dict or as
    # JSON with sorted keys; None: the RowMaker knows the entry's key
    material: dict[str, Any] | bytes | None
    model_tag: str
    body: bytes | dict[str, Any] | Columns  # b"" with no material: only the known answer's columns are needed
    cached: bool
    latency_ms: float | None  # a /batch row: None (the request's time is not a row's)
    api_key_id: str | None = None
    request_id: str | None = None
    options: tuple[bool, bool] = (True, False)  # include_uncertainty, include_feature_importance
    key: str | None = None  # the response key: answers under one key give the same columns


class Row(NamedTuple):
    """One row of the ``predictions`` table, in the order of ``COLUMNS`` (a tuple: the drivers take
    it as it is): what is per request, and the key of its answer."""

    ts: float
    family: str
    kind: str
    answer_key: str
    cached: bool
    latency_ms: float | None
    api_key_id: str | None
    request_id: str | None


class Answer(NamedTuple):
    """One row of the ``answers`` table, in the order of ``ANSWER_COLUMNS`` (JSON columns as text,
    so both databases store the same): the columns every answer under one response key and model
    shares, stored once and referred to by each of its rows."""

    answer_key: str
    material_key: str
    material: str
    model_tag: str
    outputs: str
    warnings: str
    n_warnings: int
    options: str  # JSON: include_uncertainty, include_feature_importance


class LoggedRow(NamedTuple):
    """A row as a reader sees it (``LOGGED_COLUMNS``): a prediction with its answer's columns."""

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
    options: str = "{}"


# the predictions table: what is per request; the answer's columns are in ``answers``, once per answer
COLUMNS = Row._fields
ANSWER_COLUMNS = Answer._fields
# what a reader sees of a row (the ``prediction_log`` view joins the two tables), after its id
LOGGED_COLUMNS = LoggedRow._fields


def split(logged: Sequence[LoggedRow]) -> tuple[list[Row], list[Answer]]:
    """Rows as the store writes them: each answer once, keyed by a digest of its content."""
    rows: list[Row] = []
    answers: dict[str, Answer] = {}
    for r in logged:
        content = orjson.dumps([r.material_key, r.material, r.model_tag, r.outputs, r.warnings, r.options])
        key = _digest("content", content)
        answers.setdefault(key, Answer(key, *r[3:9], r.options))
        rows.append(Row(r.ts, r.family, r.kind, key, r.cached, r.latency_ms, r.api_key_id, r.request_id))
    return rows, list(answers.values())


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


def columns(body: dict[str, Any]) -> Columns:
    """The logged columns of an answer's body (a dict; its numbers may be numpy's)."""
    warnings = list(body.get("warnings") or [])
    found = orjson.dumps(outputs(body), option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return found, orjson.dumps(warnings).decode(), len(warnings)


def canonical_json(material: dict[str, Any]) -> bytes:
    return orjson.dumps(material, option=orjson.OPT_SORT_KEYS)


def answer_key(model_tag: str, response_key: str) -> str:
    """The key of the answer of a response key and model (the response key holds the model tag
    already: the tag is hashed too, so no two models' answers ever share a row of ``answers``)."""
    return _digest(model_tag, response_key.encode())


def answer(entry: Entry) -> Answer:
    """The answer's columns of ``entry`` (its body parsed unless it came as ``Columns``, its material
    serialised); keyed by its response key and model, or (a /batch row has no response key) by its
    content."""
    if entry.material is None:
        raise ValueError("an entry without its material")
    body = entry.body
    found = body if isinstance(body, tuple) else columns(orjson.loads(body) if isinstance(body, bytes) else body)
    material = entry.material if isinstance(entry.material, bytes) else canonical_json(entry.material)
    made = (material.decode(), entry.model_tag, *found, _options_json(entry.options))
    key = answer_key(entry.model_tag, entry.key) if entry.key is not None else _digest("content", orjson.dumps(made))
    return Answer(key, _digest(entry.family, material), *made)


@functools.lru_cache(maxsize=8)
def _options_json(options: tuple[bool, bool]) -> str:
    return orjson.dumps(dict(zip(OPTIONS, options, strict=True))).decode()


def to_row(entry: Entry, answer_key: str) -> Row:
    return Row(
        entry.ts,
        entry.family,
        entry.kind,
        answer_key,
        entry.cached,
        entry.latency_ms,
        entry.api_key_id,
        entry.request_id,
    )


class Made(NamedTuple):
    """A batch's rows, and the answers they refer to that the database may not hold yet."""

    rows: list[Row]
    answers: list[Answer]
    forgotten: int  # entries without their material whose response key was forgotten: no row


class Generations(Generic[V]):
    """A bounded memo: two generations of ``per_generation`` keys; when the new one is full it
    becomes the old one (the writer's answers by response key, and an API worker's record of the
    keys it handed over: the same bound, so the two forget alike)."""

    def __init__(self, per_generation: int):
        self.per_generation = per_generation
        self._new: dict[str, V] = {}
        self._old: dict[str, V] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._new or key in self._old

    def get(self, key: str) -> V | None:
        found = self._new.get(key)
        return self._old.get(key) if found is None else found

    def put(self, key: str, value: V) -> None:
        if len(self._new) >= self.per_generation:
            self._old, self._new = self._new, {}
        self._new[key] = value

    def clear(self) -> None:
        self._new, self._old = {}, {}


class RowMaker:
    """Rows of entries; an answer's columns are made once per response key (the key holds the
    material, the model and the options): a repeat, most of the traffic, costs a lookup and a row
    of eight per-request columns. Two generations of ``MEMO_KEYS`` keys: when the new one is full
    it becomes the old one. ``stored``: the answer keys written, so their answers are not sent
    again; forgotten (``forget_stored``) when the database may have lost them (a failed write
    reconnects, perhaps to a new file; retention deletes answers no row refers to)."""

    MEMO_KEYS = 4096

    def __init__(self, memo_keys: int = MEMO_KEYS) -> None:
        self.memo_keys = memo_keys
        self._memo: Generations[Answer] = Generations(memo_keys)
        self._stored: set[str] = set()

    def knows(self, key: str) -> bool:
        return key in self._memo

    def answer(self, entry: Entry) -> Answer | None:
        """None: an entry without its material whose key was forgotten meanwhile (two
        generations of new keys between its answer and its write)."""
        if entry.key is None:
            return answer(entry)
        found = self._memo.get(entry.key)
        if found is None:
            if entry.material is None:
                return None
            found = answer(entry)
            self._memo.put(entry.key, found)
        return found

    def made(self, entries: Sequence[Entry]) -> Made:
        rows: list[Row] = []
        new: dict[str, Answer] = {}
        stored = self._stored
        for entry in entries:
            found = self.answer(entry)
            if found is not None:
                rows.append(to_row(entry, found.answer_key))
                if found.answer_key not in stored:
                    new.setdefault(found.answer_key, found)
        return Made(rows, list(new.values()), len(entries) - len(rows))

    def stored(self, answers: Sequence[Answer]) -> None:
        """``answers`` are in the database now (their transaction committed)."""
        if len(self._stored) + len(answers) > 2 * self.memo_keys:
            self._stored.clear()
        self._stored.update(a.answer_key for a in answers)

    def forget_stored(self) -> None:
        self._stored.clear()
