"""Many materials of one family through the pieces of the one prediction flow (api/prediction/flow.py), in
input order: validated in blocks of ~BLOCK_ROWS rows, sent to the runner in chunks of
MAX_BATCH_SIZE rows, as columns.

Per block:
- validation: rows decoded as raw columns (a CSV body) are checked against the catalogue's
  ranges as arrays (``features.batch.conforming``); the others (a JSON body, and the CSV rows
  that did not pass) are validated one by one with the single route's PredictionRequest (the
  batch's flags added), which also words their errors: a bad row becomes its own error, with the
  single route's message, and the others go on. Ballistic rows on a backing the models are not
  validated for are refused as by the single route (``api.prediction.domain.refuse_unvalidated``).
- keys: each valid row's canonical form and response key, as the single route builds them
  (``api.prediction.keys``); rows found in the response cache's in-process layer are answered from it;
  the others are featurised in one call, through the feature cache.
Per chunk: one runner call of its own (``direct``: beside the coalescer's lanes); the rows'
warnings come from ``api.prediction.domain`` row by row, their bodies (``Answers.outcome``) equal the single
route's for that material (same model version, same warnings). A CSV answer is written from the
runner's arrays (api/batch/io.py).

A block's chunks go to the runner together, before the next block is validated, so the runner
computes one block while the API worker validates the next (with two chunks in flight, the runner
sat idle while a block was validated: ~27 ms of API work per 512 rows against ~45 ms of model
work). At most one block's chunks wait to be answered. Memory grows with the block, not with the
batch.

Batch answers are not written to the response cache, and the shared layer is not read: a 10,000-
row screen would evict the interactive traffic's entries from the local layer, and the shared
layer costs a thread hop or a round trip per key (0.2-0.4 ms, measured on SQLite), more than the
row's prediction. The runner's prediction cache is passed by for the same reason (its per-row work
was ~7 % of the runner's time in a batch); the feature cache still serves repeats.

After a runner failure the remaining rows that need the runner get a 503 row error without
further calls (cache hits are still answered): a client re-sends those rows later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque, namedtuple
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError

from api.prediction import domain, keys, responses
from api.prediction.schemas import BatchOptions, PredictionRequest
from api.transport.access import CALLER_KEY_ID
from api.transport.errors import ApiError, InvalidInput, ServiceUnavailable
from api.transport.handlers import RUNNER_FAILURES, RUNNER_UNAVAILABLE
from features.batch import (
    MaterialBatch,
    concat_columns,
    conforming,
    material_columns,
    take_columns,
    with_defaults,
)
from features.catalogue import BLOCKS, block_inputs
from features.phases import validated_backings
from features.schema import Material
from monitoring.logs import REQUEST_ID
from predlog.entry import Entry
from runners.contract import ModelCard, Unpacked

if TYPE_CHECKING:
    from api.core import ServiceCore

logger = logging.getLogger("armor.api")
# A failed runner call, or a runner changing models under the batch: the rows get a 503 each.
_UNAVAILABLE: tuple[type[Exception], ...] = (*RUNNER_FAILURES, ServiceUnavailable)

Outcome = dict[str, Any]  # one row's result or error, as it goes out
FLAGS = ("include_uncertainty", "include_feature_importance", "model_version")
# Rows decoded, validated and featurised at once (rounded up to whole chunks): NumPy's cost per
# call, paid per column and block, stays small per row (64-row blocks cost ~15 us a row more).
BLOCK_ROWS = 512


@dataclass(frozen=True)
class RawRow:
    """One material as decoded from the body, before validation."""

    row: int  # position in the input, from 0
    material: Any
    notes: Mapping[str, str] = field(default_factory=dict)  # field path -> message replacing the validator's
    error: ApiError | None = None  # the decoder found the row unusable (e.g. a CSV row with too many cells)


class Block(Protocol):
    """Consecutive decoded materials, in input order: what is validated at once."""

    def __len__(self) -> int: ...

    def columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The positions (in the block) of the rows decoded as raw columns (``features.batch``),
        and those columns; the other rows are validated one by one."""
        ...

    def raw(self, position: int) -> RawRow:
        """The material at ``position`` as the single route's body would hold it."""
        ...

    def row(self, position: int) -> int:
        """The input row (from 0) at ``position``."""
        ...


@dataclass
class RowBlock:
    """Materials decoded one by one (a JSON body): each is validated one by one."""

    rows: list[RawRow]

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return np.zeros(0, dtype=np.int64), {}

    def raw(self, position: int) -> RawRow:
        return self.rows[position]

    def row(self, position: int) -> int:
        return self.rows[position].row


def _widest(model: type[BaseModel]) -> int:
    nested = [f.annotation for f in model.model_fields.values()]
    blocks = [a for a in nested if isinstance(a, type) and issubclass(a, BaseModel)]
    return max([len(model.model_fields), *(_widest(block) for block in blocks)])


# No part of a valid material has more fields than this: more are unknown ones, which the validator
# reports one by one (a material of 300,000 made-up fields cost 8 s of an API worker and a 50 MB
# error message; issue 34). Such a row is refused by its size alone.
MOST_FIELDS = _widest(PredictionRequest)


def _crowded(material: dict[str, Any]) -> InvalidInput | None:
    parts = [("(material)", material)] + [(k, v) for k, v in material.items() if isinstance(v, dict)]
    for name, part in parts:
        if len(part) > MOST_FIELDS:
            message = f"{len(part)} fields, more than any part of a material has ({MOST_FIELDS})"
            return InvalidInput(f"invalid request: {name}: {message}", [{"field": name, "message": message}])
    return None


def row_error(row: int, error: ApiError) -> Outcome:
    return {"row": row, **error.entry()}


def _invalid(exc: ValidationError, notes: Mapping[str, str]) -> InvalidInput:
    """The validator's errors, with the decoder's notes (e.g. "not a number") where it left one."""
    errors: list[Any] = []
    for e in exc.errors():
        note = notes.get(".".join(str(part) for part in e["loc"]))
        errors.append(e if note is None else {**e, "type": "value_error", "ctx": {"error": ValueError(note)}})
    return InvalidInput.from_validation(ValidationError.from_exception_data("request", errors), PredictionRequest)


class Stages:
    """Seconds of the API worker's time per stage of a run, for benchmarks and profiles: a lap
    gives the time since the previous lap or start (of any chunk: one thread) to its stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._since = time.perf_counter()

    def start(self) -> None:
        self._since = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._since
        self._since = now


@dataclass
class _Valid:
    """The valid rows of a block, in input order, as columns (row ``i`` of each field is one
    material), with what the caches gave for them."""

    positions: np.ndarray  # in the block
    rows: list[int]  # in the input
    columns: dict[str, np.ndarray]  # validated, defaults in (features.batch)
    materials: list[dict[str, Any]]  # canonical form (api.prediction.keys)
    stored: list[dict[str, Any] | None]  # the response cache's body, or None: the runner answers
    features: np.ndarray  # (N, F); rows answered from the response cache are left empty

    def take(self, index: list[int] | np.ndarray, shift: int = 0) -> _Valid:
        """The rows ``index``, their positions less ``shift``."""
        at = np.asarray(index, dtype=np.int64)
        picked = at.tolist()
        return _Valid(
            self.positions[at] - shift,
            [self.rows[i] for i in picked],
            take_columns(self.columns, at),
            [self.materials[i] for i in picked],
            [self.stored[i] for i in picked],
            self.features[at],
        )


@dataclass
class _Checked:
    """A validated block or chunk: the row errors by position, and the valid rows."""

    size: int
    errors: dict[int, Outcome]
    valid: _Valid | None

    def part(self, start: int, stop: int) -> _Checked:
        """Positions ``start`` to ``stop`` (a chunk of a block), from 0."""
        errors = {p - start: e for p, e in self.errors.items() if start <= p < stop}
        valid = self.valid
        if valid is not None:
            inside = np.flatnonzero((valid.positions >= start) & (valid.positions < stop))
            valid = valid.take(inside, shift=start) if len(inside) else None
        return _Checked(min(stop, self.size) - start, errors, valid)


@dataclass
class _RowChecks:
    """Per row of a runner answer: its warnings, whether an input lies outside the training range,
    and its build (ballistic; None otherwise)."""

    warnings: list[list[str]]
    outside: list[bool]
    builds: list[dict[str, Any] | None]


@dataclass
class Answers:
    """The rows of a chunk the runner answered: the arrays of its answer (row ``i`` of each is
    ``rows[i]``) and each row's warnings."""

    rows: list[int]
    card: ModelCard  # of the model that answered
    out: Unpacked
    warnings: list[list[str]]
    outside: list[bool]  # an input outside the training data's range (api.prediction.domain)
    with_interval: bool
    explain: bool
    builds: list[dict[str, Any] | None]  # ballistic: areal density and V50 margin per row

    def outcome(self, i: int) -> Outcome:
        """The single route's body for row ``i`` without its model_info (given once per model in
        the summary); MaterialFamily._respond builds it for one material."""
        out, card = self.out, self.card
        body: Outcome = {
            "row": self.rows[i],
            "predictions": responses.predictions(
                card, out.values[i], out.lower[i], out.upper[i], self.with_interval, self.outside[i]
            ),
            "feature_importance": None,
            "contribution_base": None,
        }
        if self.explain and out.contributions is not None:
            body["feature_importance"] = responses.feature_importance(card, out.contributions[i])
            body["contribution_base"] = {t: float(out.base[i, o]) for o, t in enumerate(card.targets)}
        if self.builds[i] is not None:
            body["build"] = self.builds[i]
        return body | {"warnings": self.warnings[i], "model_version": card.tag, "cached": False}


@dataclass
class ChunkOutcomes:
    """One chunk's outcomes in input order: each a row's error or cached result (a dict), or the
    position of its row in ``answers``."""

    items: list[Outcome | int]
    answers: Answers | None

    def outcomes(self) -> list[Outcome]:
        return [self._outcome(item) for item in self.items]

    def _outcome(self, item: Outcome | int) -> Outcome:
        if not isinstance(item, int):
            return item
        assert self.answers is not None  # a position points into the answers
        return self.answers.outcome(item)

    def failed_with(self, status: int) -> bool:
        return any(not isinstance(item, int) and item.get("error", {}).get("status") == status for item in self.items)


# A validated Material as ``api.prediction.domain`` reads it: the inputs of its blocks, by name.
_BLOCK_VIEWS: dict[str, Any] = {block: namedtuple(block, [i.name for i in block_inputs(block)]) for block in BLOCKS}
_MATERIAL_VIEW: Any = namedtuple("MaterialView", BLOCKS)  # type: ignore[misc]


def _materials(columns: dict[str, np.ndarray]) -> list[Material]:
    """Each row as the attributes ``api.prediction.domain`` reads of a validated Material: the column path's
    stand-in for a request model, which costs more to build than the whole row's answer."""
    blocks = [
        map(view._make, zip(*[columns[name].tolist() for name in view._fields], strict=True))
        for view in _BLOCK_VIEWS.values()
    ]
    return [cast(Material, _MATERIAL_VIEW._make(row)) for row in zip(*blocks, strict=True)]


class BatchRun:
    """One batch request: its rows through validation, the caches and the runner (module doc)."""

    def __init__(self, core: ServiceCore, family: str, options: BatchOptions, card: ModelCard):
        self.core, self.family, self.options, self.card = core, family, options, card
        self.flags = options.model_dump(include=set(FLAGS))
        self.chunk_rows = core.settings.batching.max_batch_size
        self.block_rows = self.chunk_rows * -(-BLOCK_ROWS // self.chunk_rows)  # whole chunks
        self.unavailable: ApiError | None = None  # set at the first runner failure
        self.rows = self.predicted = self.errors = self.cached = 0
        self.models: dict[str, dict[str, Any]] = {}
        self.stages = Stages()
        self.started = time.perf_counter()

    @classmethod
    async def start(cls, core: ServiceCore, family: str, options: BatchOptions) -> BatchRun:
        """Resolve the model first: an unknown model_version fails the whole batch (404)."""
        cards = core.flow.cards
        card = await (
            cards.default(family) if options.model_version is None else cards.version(family, options.model_version)
        )
        return cls(core, family, options, card)

    async def chunks(self, blocks: Iterable[Block]) -> AsyncGenerator[ChunkOutcomes, None]:
        """Each chunk's outcomes, in input order, from the rows decoded in blocks of ``block_rows``."""
        pending: deque[asyncio.Task[ChunkOutcomes]] = deque()
        try:
            for block in blocks:
                checked = self._checked(block)
                for start in range(0, checked.size, self.chunk_rows):
                    pending.append(asyncio.create_task(self._chunk(checked.part(start, start + self.chunk_rows))))
                await asyncio.sleep(0)  # the block's chunks go out before the next block is validated
                while len(pending) > self.block_rows // self.chunk_rows:  # at most a block behind
                    yield self._count(await pending.popleft())
            while pending:
                yield self._count(await pending.popleft())
        finally:
            for task in pending:
                task.cancel()

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "predicted": self.predicted,
            "errors": self.errors,
            "cached": self.cached,
            "models": self.models,
            "processing_time_ms": (time.perf_counter() - self.started) * 1e3,
            "request_id": REQUEST_ID.get(),
        }

    def _count(self, done: ChunkOutcomes) -> ChunkOutcomes:
        for item in done.items:
            failed = not isinstance(item, int) and "error" in item
            self.errors += failed
            self.predicted += not failed
            self.cached += not isinstance(item, int) and item.get("cached", False)
        self.rows += len(done.items)
        return done

    # ---- validation

    def _checked(self, block: Block) -> _Checked:
        """The block's row errors, and its valid rows with what the caches give for them."""
        self.stages.start()
        positions, raw = block.columns()
        self.stages.lap("decode")
        passed = conforming(raw) & self._backing_validated(raw) if len(positions) else np.zeros(0, dtype=bool)
        fast = np.zeros(len(block), dtype=bool)
        fast[positions[passed]] = True
        parts = [with_defaults(take_columns(raw, passed))] if passed.any() else []
        errors: dict[int, Outcome] = {}
        slow: dict[int, PredictionRequest] = {}
        for position in np.flatnonzero(~fast).tolist():
            checked = self._validate_row(block.raw(position))
            if isinstance(checked, PredictionRequest):
                slow[position] = checked
            else:
                errors[position] = checked
        if slow:
            parts.append(material_columns(list(slow.values())))
        positions = np.concatenate([np.flatnonzero(fast), list(slow)]).astype(np.int64)
        return _Checked(len(block), errors, self._valid(parts, positions, block) if parts else None)

    def _backing_validated(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Rows the family's models are validated for: the ballistic ones on a validated backing
        (the others are refused one by one, as by the single route)."""
        if self.family != "ballistic":
            return np.ones(len(raw["backing"]), dtype=bool)
        return np.isin(raw["backing"], ("", *validated_backings()))

    def _validate_row(self, raw: RawRow) -> PredictionRequest | Outcome:
        material = raw.material
        if raw.error is not None:
            return row_error(raw.row, raw.error)
        if not isinstance(material, dict):
            message = f"a material is a JSON object, got {type(material).__name__}"
            return row_error(raw.row, InvalidInput(message, [{"field": "(material)", "message": message}]))
        crowded = _crowded(material)
        if crowded is not None:
            return row_error(raw.row, crowded)
        misplaced = [f for f in FLAGS if f in material]
        if misplaced:
            message = "set for the whole batch (top level or query string), not per material"
            details = [{"field": f, "message": message} for f in misplaced]
            return row_error(raw.row, InvalidInput(f"invalid request: {misplaced[0]}: {message}", details))
        try:
            request = PredictionRequest.model_validate(material | self.flags)
            if self.family == "ballistic":
                domain.refuse_unvalidated(request)
        except ValidationError as exc:
            return row_error(raw.row, _invalid(exc, raw.notes))
        except ApiError as exc:
            return row_error(raw.row, exc)
        return request

    def _valid(self, parts: list[dict[str, np.ndarray]], positions: np.ndarray, block: Block) -> _Valid:
        """The valid rows (columns in ``parts``, at ``positions``) in input order, with their
        canonical forms, the response cache's bodies and the features of the others."""
        order = np.argsort(positions, kind="stable")
        positions = positions[order]
        columns = take_columns(concat_columns(parts), order)
        batch = MaterialBatch.from_columns(columns)
        rows = [block.row(p) for p in positions.tolist()]
        self.stages.lap("validate")
        materials = keys.canonical_materials(self.family, columns, batch.volume_fractions)
        options, tag = self.options, self.card.tag
        stored = [self._cached(keys.response_key(self.family, m, tag, options)) for m in materials]
        self.stages.lap("keys and response cache")
        features = self._features(batch, materials, [i for i, body in enumerate(stored) if body is None])
        self.stages.lap("features")
        return _Valid(positions, rows, columns, materials, stored, features)

    def _cached(self, key: str) -> dict[str, Any] | None:
        cache = self.core.response_cache
        stored = None if cache is None else cache.cache.local.get(key)
        return None if stored is None else dict(orjson.loads(stored))

    def _features(self, batch: MaterialBatch, materials: list[dict[str, Any]], rows: list[int]) -> np.ndarray:
        """(N, F) features of ``rows`` through the feature cache (AsyncFeatureExtractor, as the
        single route); the other rows are left empty."""
        extractor = self.core.extractor
        features = np.zeros((len(batch), len(extractor.featurizers[self.family].schema.names)))
        if rows:
            row_keys = [keys.material_key(self.family, materials[i]) for i in rows]
            index = np.asarray(rows, dtype=np.int64)
            features[rows] = extractor.through_cache(self.family, lambda at: batch.take(index[at]), row_keys)
        return features

    # ---- runner, answers

    async def _chunk(self, checked: _Checked) -> ChunkOutcomes:
        valid = checked.valid
        misses = [] if valid is None else [j for j, body in enumerate(valid.stored) if body is None]
        answers = None
        if valid is not None and misses:
            answers = await self._predict(valid if len(misses) == len(valid.rows) else valid.take(misses))
        self.stages.start()
        done = ChunkOutcomes(self._items(checked, {j: i for i, j in enumerate(misses)}, answers), answers)
        self.stages.lap("answers")
        self._log(checked, done)
        return done

    def _log(self, checked: _Checked, done: ChunkOutcomes) -> None:
        """The chunk's answered rows to the prediction log (PREDICTION_LOG_SAMPLE of them)."""
        log, valid = self.core.prediction_log, checked.valid
        if log is None or valid is None:
            return
        now, key_id = time.time(), CALLER_KEY_ID.get()
        options = (self.options.include_uncertainty, self.options.include_feature_importance)
        valid_rows = (p for p in range(checked.size) if p not in checked.errors)
        for j, position in enumerate(valid_rows):
            item = done.items[position]
            if (not isinstance(item, int) and "error" in item) or not log.sampled():
                continue
            body = done.answers.outcome(item) if isinstance(item, int) and done.answers is not None else item
            if isinstance(body, dict):
                material, tag, cached = valid.materials[j], body["model_version"], body["cached"]
                log.offer(Entry(now, self.family, "batch", material, tag, body, cached, None, key_id, None, options))

    def _items(self, checked: _Checked, missed: dict[int, int], answers: Answers | None) -> list[Outcome | int]:
        """Each position's outcome: its error, its cached body, its row in the runner's answers
        (``missed``: valid row -> row of the answers), or a 503 when the runner was unavailable."""
        valid = checked.valid
        items: list[Outcome | int] = []
        j = 0  # the next valid row
        for position in range(checked.size):
            if position in checked.errors:
                items.append(checked.errors[position])
                continue
            assert valid is not None  # a position without an error is a valid row
            body = valid.stored[j]
            if body is not None:
                items.append(self._result(valid.rows[j], body, self.card.tag))
            elif answers is None:
                items.append(row_error(valid.rows[j], self.unavailable or ServiceUnavailable(RUNNER_UNAVAILABLE)))
            else:
                items.append(missed[j])
            j += 1
        return items

    async def _predict(self, misses: _Valid) -> Answers | None:
        """One runner call for the chunk's rows that missed the response cache; None when the
        runner is unavailable (the rows get a 503 error each)."""
        if self.unavailable is not None:
            return None
        flow = self.core.flow
        self.stages.start()
        try:
            out = await flow.runner_answer(self.family, misses.features, self.card, self.options, direct=True)
            answered = await flow.cards.answered(self.family, float(out.tag_id[0]), self.card)
        except _UNAVAILABLE as exc:
            logger.warning("runner call failed in a batch: %s", type(exc).__name__)
            self.unavailable = exc if isinstance(exc, ApiError) else ServiceUnavailable(RUNNER_UNAVAILABLE)
            return None
        finally:
            self.stages.lap("runner")
        if self.options.model_version is None:
            self.card = answered  # the default moved (a runner restarted on a newer model): follow it
        checks = self._row_checks(misses, answered, out)
        self.models.setdefault(answered.tag, responses.model_info(answered))
        options = self.options
        answers = Answers(
            misses.rows,
            answered,
            out,
            checks.warnings,
            checks.outside,
            options.include_uncertainty,
            options.include_feature_importance,
            checks.builds,
        )
        self.stages.lap("answers")
        return answers

    def _row_checks(self, rows: _Valid, card: ModelCard, out: Unpacked) -> _RowChecks:
        """Each row's warnings from the domain check (api.prediction.domain) and, ballistic, its
        build (areal density, V50 margin), as the single route gives them."""
        checks = _RowChecks([], [], [None] * len(rows.rows))
        ballistic = card.family == "ballistic"
        values = out.values.tolist()
        materials = _materials(rows.columns)
        for material, canonical, row_values in zip(materials, rows.materials, values, strict=True):
            found, beyond = domain.check(material, canonical["composition"], card.feature_ranges, card.family)
            if ballistic:
                found += domain.ballistic_warnings(material, dict(zip(card.targets, row_values, strict=True)))
            checks.warnings.append(found)
            checks.outside.append(beyond)
        if ballistic:
            compositions = [m["composition"] for m in rows.materials]
            answer, interval = (out.values, out.lower, out.upper), self.options.include_uncertainty
            checks.builds = list(responses.builds(materials, compositions, card, answer, interval))
        return checks

    def _result(self, row: int, body: dict[str, Any], tag: str) -> Outcome:
        """A cached single-route body without its model_info (given once per model in the summary)."""
        info = body.pop("model_info")
        self.models.setdefault(tag, info)
        return {"row": row, **body, "model_version": tag, "cached": True}
