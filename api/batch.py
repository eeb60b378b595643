"""Many materials of one family through the pieces of the one prediction flow (api/flow.py), in
chunks of MAX_BATCH_SIZE rows, in input order.

Per row: validated with the single route's PredictionRequest (the batch's flags added), prepared
by the family (canonical form, ballistic backing check), keyed like a single request
(api.keys): a bad row becomes its own error, the others go on. Per chunk: rows found in the
response cache's in-process layer are answered from it; the others are featurised in one call
(through the feature cache) and sent to the runner in one call through the coalescer; each row's
body is the family's ``respond`` on its row of the answer, so a row equals the single route's
answer for that material (same model version, same warnings).

The next chunk is validated while the current one is on the wire (two chunks in flight), so the
API worker and the runner work at the same time. Memory grows with the chunk, not with the batch.

Batch answers are not written to the response cache, and the shared layer is not read: a 10,000-
row screen would evict the interactive traffic's entries from the local layer, and the shared
layer costs a thread hop or a round trip per key (0.2-0.4 ms, measured on SQLite), more than the
row's prediction. The feature cache and the runners' prediction cache still serve repeats.

After a runner failure the remaining rows that need the runner get a 503 row error without
further calls (cache hits are still answered): a client re-sends those rows later.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from api import keys
from api.errors import ApiError, InvalidInput, ServiceUnavailable
from api.families import Prepared
from api.handlers import RUNNER_FAILURES, RUNNER_UNAVAILABLE
from api.schemas import BatchOptions, PredictionRequest
from runners.contract import ModelCard, Unpacked

if TYPE_CHECKING:
    from api.core import ServiceCore

logger = logging.getLogger("armor.api")
# A failed runner call, or a runner changing models under the batch: the rows get a 503 each.
_UNAVAILABLE: tuple[type[Exception], ...] = (*RUNNER_FAILURES, ServiceUnavailable)

Outcome = dict[str, Any]  # one row's result or error, as it goes out
FLAGS = ("include_uncertainty", "include_feature_importance", "model_version")
PIPELINE_DEPTH = 2  # chunks in flight: one on the wire while the next is validated and featurised


@dataclass(frozen=True)
class RawRow:
    """One material as decoded from the body, before validation."""

    row: int  # position in the input, from 0
    material: Any
    notes: Mapping[str, str] = field(default_factory=dict)  # field path -> message replacing the validator's
    error: ApiError | None = None  # the decoder found the row unusable (e.g. a CSV row with too many cells)


@dataclass
class _Valid:
    row: int
    request: PredictionRequest
    prepared: Prepared
    key: str  # the response key, as the single route builds it


def row_error(row: int, error: ApiError) -> Outcome:
    return {"row": row, **error.body()}


def _invalid(exc: ValidationError, notes: Mapping[str, str]) -> InvalidInput:
    """The validator's errors, with the decoder's notes (e.g. "not a number") where it left one."""
    errors: list[Any] = []
    for e in exc.errors():
        note = notes.get(".".join(str(part) for part in e["loc"]))
        errors.append(e if note is None else {**e, "type": "value_error", "ctx": {"error": ValueError(note)}})
    return InvalidInput.from_validation(ValidationError.from_exception_data("request", errors), PredictionRequest)


def _one(out: Unpacked, i: int) -> Unpacked:
    """Row ``i`` of a runner answer, as the family's ``respond`` reads a single request's answer."""
    s = slice(i, i + 1)
    contributions = None if out.contributions is None else out.contributions[s]
    return Unpacked(out.tag_id[s], out.values[s], out.lower[s], out.upper[s], out.base[s], contributions)


def _chunked(rows: Iterable[RawRow], size: int) -> Iterator[list[RawRow]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class BatchRun:
    """One batch request: its rows through validation, the caches and the runner (module doc)."""

    def __init__(self, core: ServiceCore, family: str, options: BatchOptions, card: ModelCard):
        self.core, self.family, self.options, self.card = core, family, options, card
        self.flags = options.model_dump(include=set(FLAGS))
        self.chunk_rows = core.settings.batching.max_batch_size
        self.unavailable: ApiError | None = None  # set at the first runner failure
        self.rows = self.predicted = self.errors = self.cached = 0
        self.models: dict[str, dict[str, Any]] = {}
        self.started = time.perf_counter()

    @classmethod
    async def start(cls, core: ServiceCore, family: str, options: BatchOptions) -> BatchRun:
        """Resolve the model first: an unknown model_version fails the whole batch (404)."""
        cards = core.flow.cards
        card = await (
            cards.default(family) if options.model_version is None else cards.version(family, options.model_version)
        )
        return cls(core, family, options, card)

    async def chunks(self, rows: Iterable[RawRow]) -> AsyncGenerator[list[Outcome], None]:
        """Each chunk's outcomes, in input order."""
        pending: deque[asyncio.Task[list[Outcome]]] = deque()
        try:
            for chunk in _chunked(rows, self.chunk_rows):
                pending.append(asyncio.create_task(self._chunk([self._validate(raw) for raw in chunk])))
                if len(pending) >= PIPELINE_DEPTH:
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
        }

    def _count(self, outcomes: list[Outcome]) -> list[Outcome]:
        for outcome in outcomes:
            failed = "error" in outcome
            self.errors += failed
            self.predicted += not failed
            self.cached += outcome.get("cached", False)
        self.rows += len(outcomes)
        return outcomes

    def _validate(self, raw: RawRow) -> _Valid | Outcome:
        material = raw.material
        if raw.error is not None:
            return row_error(raw.row, raw.error)
        if not isinstance(material, dict):
            message = f"a material is a JSON object, got {type(material).__name__}"
            return row_error(raw.row, InvalidInput(message, [{"field": "(material)", "message": message}]))
        misplaced = [f for f in FLAGS if f in material]
        if misplaced:
            message = "set for the whole batch (top level or query string), not per material"
            details = [{"field": f, "message": message} for f in misplaced]
            return row_error(raw.row, InvalidInput(f"invalid request: {misplaced[0]}: {message}", details))
        try:
            request = PredictionRequest.model_validate(material | self.flags)
            prepared = self.core.flow.families[self.family].prepare(request)
        except ValidationError as exc:
            return row_error(raw.row, _invalid(exc, raw.notes))
        except ApiError as exc:
            return row_error(raw.row, exc)
        return _Valid(
            raw.row, request, prepared, keys.response_key(self.family, prepared.canonical, self.card.tag, request)
        )

    def _cached(self, key: str) -> dict[str, Any] | None:
        cache = self.core.response_cache
        stored = None if cache is None else cache.cache.local.get(key)
        return None if stored is None else dict(orjson.loads(stored))

    async def _chunk(self, items: list[_Valid | Outcome]) -> list[Outcome]:
        hits = {item.row: body for item in items if isinstance(item, _Valid) and (body := self._cached(item.key))}
        misses = [item for item in items if isinstance(item, _Valid) and item.row not in hits]
        answers = await self._predict(misses) if misses else {}
        out: list[Outcome] = []
        for item in items:
            if not isinstance(item, _Valid):
                out.append(item)
            elif item.row in hits:
                out.append(self._result(item.row, hits[item.row], self.card.tag, cached=True))
            else:
                out.append(answers[item.row])
        return out

    async def _predict(self, misses: list[_Valid]) -> dict[int, Outcome]:
        """One featurisation and one runner call for the chunk's rows that missed the cache."""
        if self.unavailable is not None:
            return {m.row: row_error(m.row, self.unavailable) for m in misses}
        flow = self.core.flow
        material_keys = [keys.material_key(self.family, m.prepared.canonical) for m in misses]
        features = await self.core.extractor.extract(self.family, [m.request for m in misses], material_keys)
        try:
            out = await flow.runner_answer(self.family, features, self.card, misses[0].request)
            answered = await flow.cards.answered(self.family, float(out.tag_id[0]), self.card)
        except _UNAVAILABLE as exc:
            logger.warning("runner call failed in a batch: %s", type(exc).__name__)
            self.unavailable = exc if isinstance(exc, ApiError) else ServiceUnavailable(RUNNER_UNAVAILABLE)
            return {m.row: row_error(m.row, self.unavailable) for m in misses}
        if self.options.model_version is None:
            self.card = answered  # the default moved (a runner restarted on a newer model): follow it
        return {
            m.row: self._result(m.row, m.prepared.respond(answered, _one(out, i)), answered.tag, cached=False)
            for i, m in enumerate(misses)
        }

    def _result(self, row: int, body: dict[str, Any], tag: str, cached: bool) -> Outcome:
        """The single route's body without its model_info (given once per model in the summary)."""
        info = body.pop("model_info")
        self.models.setdefault(tag, info)
        return {"row": row, **body, "model_version": tag, "cached": cached}
