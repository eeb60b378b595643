"""POST /api/v1/predict/{mechanical,ballistic}/batch: many materials in one request.

Decode (api/batch/io.py), check the limits (MAX_BATCH_ROWS; the body cap MAX_BATCH_REQUEST_BYTES is
the middleware's), resolve the model, run the first chunk (a runner that is down answers the whole
request 503 with Retry-After, before anything is sent), then stream the rest as the chunks are done
(api/batch/flow.py), screened when asked (api/batch/screening.py), gzip-compressed when accepted.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from api.batch.flow import BatchRun, ChunkOutcomes, Outcome
from api.batch.io import (
    Encoder,
    Gzip,
    Job,
    UnsupportedMediaType,
    csv_job,
    decompressed,
    encoder_for,
    json_job,
    query_options,
    wants_gzip,
)
from api.batch.screening import Screen, known_quantities
from api.prediction.schemas import PREDICTION_ERRORS, WHERE_PATTERN, BatchRequest, BatchResponse, ErrorBody
from api.transport.errors import InvalidInput, for_caller
from api.transport.handlers import admin, failure_response
from features.catalogue import TARGETS
from settings import BatchRouteSettings

if TYPE_CHECKING:
    from api.core import ServiceCore

BATCH_FAMILIES = ("mechanical", "ballistic")
_CSV_SCHEMA = {
    "type": "string",
    "pattern": r"\S",  # a header row at least: a blank body is a 400
    "description": "a header row (columns of data/reference_materials.csv), a material a row",
}
_ERRORS: dict[int | str, dict[str, Any]] = PREDICTION_ERRORS | {
    413: PREDICTION_ERRORS[413]
    | {"description": "body over MAX_BATCH_REQUEST_BYTES, or more materials than MAX_BATCH_ROWS"},
    415: {"model": ErrorBody, "description": "a Content-Type other than application/json or text/csv"},
}


def batch_path(family: str) -> str:
    return f"/api/v1/predict/{family}/batch"


def decode_job(raw: bytes, headers: Mapping[str, str], query: list[tuple[str, str]], limits: BatchRouteSettings) -> Job:
    """The request's materials and options: inflated (at most MAX_DECOMPRESSION_RATIO times the body
    as sent), parsed and counted up to MAX_BATCH_ROWS + 1 (api/batch/io.py)."""
    encoding = headers.get("content-encoding", "")
    body = decompressed(raw, encoding, limits.max_request_bytes, limits.max_decompression_ratio)
    media = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media == "text/csv":
        return csv_job(body, query_options(query), limits.max_rows)
    if media != "application/json":
        raise UnsupportedMediaType(f"Content-Type {media!r} is not supported; send application/json or text/csv")
    if query:
        message = "with a JSON body the options go in the body, not the query string"
        raise InvalidInput(f"invalid request: {message}", [{"field": "(query)", "message": message}])
    return json_job(body, limits.max_rows)


async def read_job(request: Request, limits: BatchRouteSettings, decoder: Executor | None = None) -> Job:
    """``decode_job`` on ``decoder``'s thread: inflating and parsing up to MAX_BATCH_REQUEST_BYTES
    takes up to a second of CPU, which the event loop's other requests must not wait for (the
    request's deadline still runs: it covers reading and decoding)."""
    raw = await request.body()
    query = request.query_params.multi_items()
    decode = partial(decode_job, raw, request.headers, query, limits)
    return await asyncio.get_running_loop().run_in_executor(decoder, decode)


async def _stream(
    encoder: Encoder,
    run: BatchRun,
    screen: Screen | None,
    first: ChunkOutcomes,
    rest: AsyncIterator[ChunkOutcomes],
) -> AsyncIterator[bytes]:
    yield encoder.head()
    if screen is None:
        yield encoder.chunk(first)
        async for done in rest:
            yield encoder.chunk(done)
        yield encoder.tail(run.summary() | {"returned": run.rows})
        return
    errors: list[Outcome] = []
    for outcome in itertools.chain(first.outcomes(), *[done.outcomes() async for done in rest]):
        errors.append(outcome) if "error" in outcome else screen.offer(outcome)
    ranked = list(screen.ranked())
    yield encoder.rows(ranked)
    yield encoder.rows(errors)
    yield encoder.tail(run.summary() | {"matched": screen.matched, "returned": len(ranked) + len(errors)})


async def _gzipped(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    gzip = Gzip()
    async for piece in stream:
        if piece:
            yield gzip.piece(piece)
    yield gzip.end()


async def job_stream(core: ServiceCore, family: str, job: Job, encoder: Encoder) -> AsyncIterator[bytes]:
    """The answer to ``job`` as ``encoder`` writes it, streamed as the chunks are done. Raises the
    runner's failure when it could not answer the first chunk (nothing is sent yet: the client
    retries the whole batch)."""
    screen = Screen.from_options(job.options, family)
    run = await BatchRun.start(core, family, job.options)
    chunks = run.chunks(job.blocks(run.block_rows))
    first = await anext(chunks, ChunkOutcomes([], None))
    if run.unavailable is not None and first.failed_with(503):
        await chunks.aclose()
        raise run.unavailable
    return _stream(encoder, run, screen, first, chunks)


async def answer_batch(core: ServiceCore, family: str, request: Request, limits: BatchRouteSettings) -> Response:
    job = await read_job(request, limits, core.batch_decoder)
    encoder = encoder_for(request.headers.get("accept", ""), TARGETS[family])
    stream = await job_stream(core, family, job, encoder)  # its ApiError: predict_batch's failure_response
    headers = {"Vary": "Accept, Accept-Encoding"}
    if wants_gzip(request.headers.get("accept-encoding", "")):
        stream, headers["Content-Encoding"] = _gzipped(stream), "gzip"
    return StreamingResponse(stream, media_type=encoder.media_type, headers=headers)


# top without a rank_by is refused ("which rows are the best?"). Said here, in the route's document
# (JSON Schema 2020-12), not on BatchOptions: BentoML's own schema objects take no "if".
_TOP_NEEDS_RANK_BY: dict[str, Any] = {
    "if": {"properties": {"top": {"type": "integer"}}, "required": ["top"]},
    "then": {"properties": {"rank_by": {"type": "string"}}, "required": ["rank_by"]},
}


def _json_schema(family: str) -> dict[str, Any]:
    """BatchRequest's schema with the family's quantities named: rank_by one of them, each where
    constraint about one of them (what api/batch/screening.py accepts)."""
    schema = BatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    known = known_quantities(family)
    properties = schema["properties"]
    properties["rank_by"]["anyOf"] = [{"enum": known, "type": "string"}, {"type": "null"}]
    properties["where"]["items"]["pattern"] = _where_pattern(known)
    plain = list(TARGETS[family])  # without an interval, no bound to rank or screen by
    schema["allOf"] = [
        _TOP_NEEDS_RANK_BY,
        {
            "if": {"properties": {"include_uncertainty": {"const": False}}, "required": ["include_uncertainty"]},
            "then": {
                "properties": {
                    "rank_by": {"anyOf": [{"enum": plain, "type": "string"}, {"type": "null"}]},
                    "where": {"items": {"type": "string", "pattern": _where_pattern(plain)}},
                }
            },
        },
    ]
    return schema


def _where_pattern(quantities: list[str]) -> str:
    names = "|".join(sorted(quantities, key=lambda k: (-len(k), k)))
    return WHERE_PATTERN.replace("([A-Za-z_][A-Za-z0-9_]*)", f"({names})", 1)


def register_batch_routes(app: FastAPI, get_service: Callable[[], ServiceCore], limits: BatchRouteSettings) -> None:
    """The /batch route of each material family; their body cap is set on the middleware."""
    for family in BATCH_FAMILIES:
        _register(app, get_service, limits, family)


def _register(app: FastAPI, get_service: Callable[[], ServiceCore], limits: BatchRouteSettings, family: str) -> None:
    request_body = {
        "content": {
            "application/json": {"schema": _json_schema(family)},
            "text/csv": {"schema": _CSV_SCHEMA},
        },
        "required": True,
    }

    @app.post(
        batch_path(family),
        response_model=BatchResponse,
        responses=_ERRORS,
        summary=f"{family.capitalize()} predictions for up to MAX_BATCH_ROWS materials (JSON or CSV in; JSON, "
        "NDJSON or CSV out by Accept; gzip), row-level errors, optional screening (rank_by, where, top)",
        openapi_extra={"requestBody": request_body},
    )
    async def predict_batch(request: Request) -> Response:
        core = get_service()
        try:
            return await answer_batch(core, family, request, limits)
        except Exception as exc:
            return failure_response(for_caller(exc, admin(request, core.settings.serving.admin_token)))
