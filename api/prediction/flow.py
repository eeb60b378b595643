"""One code path for every family: validated request -> cache -> features -> runner -> response.

What differs between families (canonical form, feature rows, response body) is in api/prediction/families.py.

key      = canonical request + model tag (api.prediction.keys)
cached?  -> the stored body, ``cached: true``
else     -> single flight on the key: features (feature cache), one runner call, response;
            stored in the response cache (local, and Redis when CACHE_BACKEND=redis)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from enum import Enum
from typing import Any, NamedTuple

import numpy as np
import orjson

from api.prediction import keys
from api.prediction.families import Family, Prepared, Request
from api.prediction.feature_extractor import PendingRows
from api.prediction.predictor import AsyncPredictor
from api.prediction.schemas import AnswerOptions
from api.transport.access import CALLER_KEY_ID
from api.transport.errors import ApiError, InvalidInput, ServiceUnavailable, UnknownModelVersion
from api.transport.repeats import RepeatMemo
from caching import SingleFlight
from monitoring.instrumented import InstrumentedLayeredCache
from monitoring.metrics import NO_MODEL, Metrics
from monitoring.window import Ring
from predlog.entry import Columns, Entry, canonical_json, columns
from predlog.queue import Log
from runners.contract import CardReply, ModelCard, Unpacked, unpack

# the model tag that answered this request (the ``model`` label of its request counter, api/transport/handlers.py)
ANSWERED_BY: ContextVar[str] = ContextVar("armor_answered_by", default=NO_MODEL)


class Logged(NamedTuple):
    """What the prediction log needs of a request beyond its answer (predlog/entry.py)."""

    canonical: dict[str, Any]
    options: tuple[bool, bool]
    key: str  # the response key
    columns: Columns | None = None  # the answer's logged columns, when it was computed for this request


class Computed(NamedTuple):
    """An answer computed: rendered, and (with the prediction log on) its logged columns, made from
    its body before rendering so the log's writer parses nothing (predlog/entry.py ``columns``)."""

    rendered: bytes
    columns: Columns | None


class Precomputed(Enum):
    """Where ``PredictionFlow.precompute`` found the answer; true only when it was computed."""

    HELD = "held"  # by this worker's local layer already (or the worker keeps no cache)
    FROM_SHARED = "from_shared"  # by the shared layer: copied into the local layer
    COMPUTED = "computed"

    def __bool__(self) -> bool:
        return self is Precomputed.COMPUTED


def _options(request: Request) -> tuple[bool, bool]:
    """The answer options a response key holds (api/prediction/keys.py), as the log records them."""
    return request.include_uncertainty, request.include_feature_importance


class ModelCards:
    """Model cards, asked of the runners (a stored model never changes: one ask per tag). The
    default model's card is re-asked when an answer comes from another model (a runner restarted
    on a newer one)."""

    NEGATIVE_TTL_S = 5.0  # an unknown version is re-asked at most this often (a model saved meanwhile shows up)
    NEGATIVE_MAX = 1024  # distinct unknown versions remembered; beyond it the memory is cleared

    def __init__(self, predictor: AsyncPredictor, on_default: Callable[[str, str], None] = lambda family, tag: None):
        """``on_default(family, tag)``: told each time a family's default model is learnt or changes."""
        self.predictor, self.on_default = predictor, on_default
        self._default: dict[str, ModelCard] = {}
        self._versions: dict[tuple[str, str], ModelCard] = {}
        self._refused: dict[tuple[str, str], tuple[float, ApiError]] = {}

    def known_default(self, family: str) -> ModelCard | None:
        """The default model's card as last seen, without asking (None before the first ask)."""
        return self._default.get(family)

    async def default(self, family: str) -> ModelCard:
        if family not in self._default:
            self._default[family] = await self._ask(family, None)
            self.on_default(family, self._default[family].tag)
        return self._default[family]

    async def version(self, family: str, version: str) -> ModelCard:
        """The card of a pinned version; an unknown or malformed one is refused from memory for
        ``NEGATIVE_TTL_S`` (a flood of them must not cost a runner call each)."""
        key = (family, version)
        if key in self._versions:
            return self._versions[key]
        refused = self._refused.get(key)
        if refused is not None and time.monotonic() - refused[0] < self.NEGATIVE_TTL_S:
            raise refused[1].with_traceback(None)  # re-raising one instance must not grow its traceback
        try:
            self._versions[key] = await self._ask(family, version)
        except (InvalidInput, UnknownModelVersion) as exc:
            if len(self._refused) >= self.NEGATIVE_MAX:
                self._refused.clear()
            self._refused[key] = (time.monotonic(), exc)
            raise
        return self._versions[key]

    async def answered(self, family: str, answer_tag_id: float, expected: ModelCard) -> ModelCard:
        """The card of the model that produced an answer."""
        if answer_tag_id == expected.tag_id:
            return expected
        fresh = await self._ask(family, None)
        self._default[family] = fresh
        self.on_default(family, fresh.tag)
        if fresh.tag_id != answer_tag_id:
            raise ServiceUnavailable(f"the {family} runner is changing models; retry shortly")
        return fresh

    async def _ask(self, family: str, version: str | None) -> ModelCard:
        reply = CardReply.from_dict(await self.predictor.card(family, version))
        if reply.card is not None:
            return reply.card
        if reply.error == "invalid":
            raise InvalidInput(
                f"invalid request: model_version: {reply.message}",
                [{"field": "model_version", "message": reply.message}],
            )
        raise UnknownModelVersion(reply.message, family, list(reply.available))


class PredictionFlow:
    def __init__(
        self,
        predictor: AsyncPredictor,
        families: dict[str, Family],
        metrics: Metrics,
        response_cache: InstrumentedLayeredCache | None,
        rings: dict[str, Ring],
        repeats: RepeatMemo | None = None,
        log: Log | None = None,
        on_default: Callable[[str, str], None] | None = None,
    ):
        """``repeats``: exact repeats remembered for the answer before parsing (api/transport/repeats.py);
        only useful, and only given, with a response cache. ``log``: where every answer is
        recorded (predlog/), if anywhere. ``on_default(family, tag)``: told when a family's default
        model is learnt or changes (besides the metrics' info series)."""
        self.predictor, self.families, self.metrics, self.log = predictor, families, metrics, log
        self.response_cache, self.rings = response_cache, rings
        self.repeats = repeats if response_cache is not None else None
        self.cards = ModelCards(predictor, self._default_changed)
        self._on_default = on_default
        self.observers: list[Callable[[str, Request, dict[str, Any]], None]] = []
        self.flight: SingleFlight[Computed] = SingleFlight()

    def _default_changed(self, family: str, tag: str) -> None:
        self.metrics.serving(family, tag)
        if self._on_default is not None:
            self._on_default(family, tag)

    async def precompute(self, family: str, request: Request) -> Precomputed:
        """Put the default model's answer to ``request`` into this worker's response cache ahead
        of its asker (api/prediction/warmup.py): from the shared layer when it holds it (a Redis
        GET costs far less than a model call), else computed; the outcome is false when nothing was
        computed. The look-ups are not counted: the caches' hit rates stay the askers'."""
        if self.response_cache is None:
            return Precomputed.HELD
        prepared = self.families[family].prepare(request)
        card = await self.cards.default(family)
        key = keys.response_key(family, prepared.canonical, card.tag, request)
        if self.response_cache.cache.local.holds(key):
            return Precomputed.HELD
        if await self.response_cache.fill_local(key):
            return Precomputed.FROM_SHARED
        await self.flight.do(key, lambda: self._compute(family, request, prepared, card, key, precompute=True))
        return Precomputed.COMPUTED

    async def _card(self, family: str, version: str | None) -> ModelCard:
        return await (self.cards.default(family) if version is None else self.cards.version(family, version))

    async def runner_answer(
        self,
        family: str,
        features: np.ndarray | PendingRows,
        card: ModelCard,
        options: AnswerOptions,
        direct: bool = False,
    ) -> Unpacked:
        """The runner's answer, from the model the request (or batch) asked for (a pinned version
        is asked for by name when the default moved away from it meanwhile); ``direct``: see
        AsyncPredictor.predict. Pending rows only for a request that pins no version (they
        cannot be sent twice)."""
        explain = options.include_feature_importance
        default = await self.cards.default(family)
        version = None if card.tag == default.tag else card.tag
        width = len(card.feature_names)  # the contributions' (the rows sent may be material rows)
        packed = await self.predictor.predict(family, features, version, explain, direct)
        out = unpack(packed, len(card.targets), width)
        if options.model_version is not None and out.tag_id[0] != card.tag_id:
            packed = await self.predictor.predict(family, features, card.tag, explain, direct)
            out = unpack(packed, len(card.targets), width)
        return out

    async def _compute(
        self, family: str, request: Request, prepared: Prepared, card: ModelCard, key: str, precompute: bool = False
    ) -> Computed:
        """The rendered answer (stored as rendered: the response is rendered once), and with the
        prediction log on its logged columns (``precompute``: for the warm-up, not logged)."""
        rows = await prepared.rows(request.model_version is not None)
        out = await self.runner_answer(family, rows, card, request)
        answered = await self.cards.answered(family, float(out.tag_id[0]), card)
        if answered.tag != card.tag:  # label and store the answer under the model that gave it
            key = keys.response_key(family, prepared.canonical, answered.tag, request)
        body = prepared.respond(answered, out)
        rendered = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        if self.response_cache is not None:
            await self.response_cache.set(key, rendered)
        # the columns only for a response key the writer does not know yet (a known one is logged
        # as a reference; a warm-up's answer is not logged at all)
        wanted = self.log is not None and not self.log.knows(key) and not precompute
        return Computed(rendered, columns(body) if wanted else None)

    async def _cached(self, key: str) -> bytes | None:
        return None if self.response_cache is None else await self.response_cache.get(key)

    async def predict(
        self, family: str, request: Request, request_id: str | None = None, raw_key: str | None = None
    ) -> dict[str, Any]:
        """The answer as a dict (``answer`` renders it once, for the routes)."""
        return dict(orjson.loads(await self.answer(family, request, request_id, raw_key)))

    async def answer(
        self, family: str, request: Request, request_id: str | None = None, raw_key: str | None = None
    ) -> bytes:
        """The rendered answer with this request's own fields. ``raw_key``: the request's bytes
        (api/transport/repeats.py), remembered with its response key once answered, so an exact repeat is
        answered before parsing."""
        started = time.perf_counter()
        prepared = self.families[family].prepare(request)
        card = await self._card(family, request.model_version)
        key = keys.response_key(family, prepared.canonical, card.tag, request)
        stored = await self._cached(key)
        cached, made = stored is not None, None
        if stored is None:
            computed = await self.flight.do(key, lambda: self._compute(family, request, prepared, card, key))
            stored, made = computed.rendered, computed.columns
        echo = orjson.dumps(prepared.echo) if prepared.echo else b""
        if raw_key is not None and self.repeats is not None and request.model_version is None:
            self._remember(family, raw_key, key, card.tag, echo, prepared.canonical, _options(request))
        if request.model_version is None:
            for observe in self.observers:  # e.g. the sweep prefetch (api/prediction/warmup.py)
                observe(family, request, prepared.canonical)
        logged = Logged(prepared.canonical, _options(request), key, made)
        return self._finish(family, card.tag, stored, started, request_id, cached, echo, logged)

    def _remember(
        self,
        family: str,
        raw_key: str,
        key: str,
        tag: str,
        echo: bytes,
        canonical: dict[str, Any],
        options: tuple[bool, bool],
    ) -> None:
        """Only an answer of the model still serving (one that moved meanwhile stored its answer
        under its own tag)."""
        default = self.cards.known_default(family)
        if self.repeats is not None and default is not None and default.tag == tag:
            self.repeats.remember(raw_key, key, tag, echo, canonical, options)

    def remembers(self, raw_key: str) -> bool:
        """Whether ``repeat`` may answer ``raw_key`` (it may still find its answer gone)."""
        return self.repeats is not None and raw_key in self.repeats

    async def repeat(self, family: str, raw_key: str, request_id: str) -> bytes | None:
        """The rendered answer to an exact repeat of a request answered before, from the response
        cache; None when it is not remembered, was answered by another model than the one now
        serving, or its answer left the cache (the full path then answers it). The stored body is
        not parsed: ``_finish`` appends the per-request fields to its bytes."""
        started = time.perf_counter()
        remembered = self.repeats.recall(raw_key) if self.repeats is not None else None
        if remembered is None or self.response_cache is None:
            return None
        key, tag, echo, canonical, options = remembered
        default = self.cards.known_default(family)
        if default is None or default.tag != tag:
            return None
        stored = await self.response_cache.get(key)
        if stored is None:
            return None
        logged = Logged(canonical, options, key) if canonical is not None else None
        return self._finish(family, tag, stored, started, request_id, True, echo, logged)

    def _finish(
        self,
        family: str,
        tag: str,
        rendered: bytes,
        started: float,
        request_id: str | None,
        cached: bool,
        echo: bytes = b"",
        logged: Logged | None = None,
    ) -> bytes:
        """The rendered answer of model ``tag`` with this request's own fields: its input's echo (a
        rendered object, or nothing) before the stored body's fields, the per-request ones after
        (the stored bytes are not parsed). The request's time is observed here, and the answer
        handed to the prediction log (``logged``: the request's canonical form and options)."""
        ANSWERED_BY.set(tag)
        elapsed = time.perf_counter() - started
        self._observe(family, tag, elapsed)
        request_id = request_id or uuid.uuid4().hex
        if self.log is not None and logged is not None:
            # a response key the writer knows: the entry is a reference (no material, no body)
            known = self.log.knows(logged.key)
            material = None if known else canonical_json(logged.canonical)
            body: bytes | Columns = b"" if known else (logged.columns or rendered)
            caller, options, key = CALLER_KEY_ID.get(), logged.options, logged.key
            ms = elapsed * 1e3
            self.log.offer(
                Entry(time.time(), family, "single", material, tag, body, cached, ms, caller, request_id, options, key)
            )
        tail = orjson.dumps({"request_id": request_id, "processing_time_ms": elapsed * 1e3, "cached": cached})
        head = echo[:-1] + b"," if echo else b"{"
        return head + rendered[1:-1] + b"," + tail[1:]

    def _observe(self, family: str, tag: str, seconds: float) -> None:
        self.metrics.tally.observe(self.metrics.request_latency(family, tag), seconds)
        self.rings[family].append(seconds)
