"""POST /api/v1/design: parse the body, state the problem (design/spec.py, 422 naming the field),
run the search (design/search.py) and answer its result as JSON, or, with ``Accept:
application/x-ndjson``, a progress line per generation and the result as the last line.

A streamed search has answered 200 before it ends: a failure after that (the runner going down)
is the last line, ``{"error": ...}``, with the status the JSON answer would have had.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from api.prediction.schemas import PREDICTION_ERRORS
from api.transport.errors import InvalidInput, MalformedBody
from api.transport.handlers import failure_response
from api.transport.http import ORJSONResponse
from design.evaluate import Evaluator
from design.spec import DesignRequest, problem

if TYPE_CHECKING:
    from api.core import ServiceCore

DESIGN_PATH = "/api/v1/design"
NDJSON = "application/x-ndjson"


def parse(raw: bytes) -> DesignRequest:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedBody("request body is not valid JSON; expected a design request object") from None
    if not isinstance(data, dict):
        raise MalformedBody("request body must be a JSON object (a design request)")
    try:
        return DesignRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, DesignRequest) from None


async def start(core: ServiceCore, raw: bytes) -> AsyncIterator[dict[str, Any]]:
    """The search's events; the request is checked and the models resolved before the first."""
    from design.search import Search  # optuna comes with the first search, not with every API worker (~13 MB)

    stated = problem(parse(raw), core.settings.design)
    evaluator = await Evaluator.start(core, stated.families)
    return Search(stated, evaluator).events()


async def _lines(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield orjson.dumps(event, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    except Exception as exc:  # the status line is sent: the failure is the last line
        yield bytes(failure_response(exc).body) + b"\n"


async def _last(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    last: dict[str, Any] = {}
    async for event in events:
        last = event
    return last


def inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``{"$ref": "#/$defs/X"}`` replaced by X (the request body's schema is
    published whole: the document's components do not hold the nested models)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return inlined(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: inlined(v, definitions) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [inlined(item, definitions) for item in schema]
    return schema


def register_design_route(app: FastAPI, get_service: Callable[[], ServiceCore]) -> None:
    schema = DesignRequest.model_json_schema()
    body = {"content": {"application/json": {"schema": inlined(schema, schema.get("$defs", {}))}}, "required": True}

    @app.post(
        DESIGN_PATH,
        responses=PREDICTION_ERRORS,
        summary="Inverse design: the Pareto front of candidates that meet the constraints (both families), "
        "each a complete single-route body with its predictions; NDJSON progress with Accept: application/x-ndjson",
        openapi_extra={"requestBody": body},
    )
    async def design(request: Request) -> Response:
        try:
            events = await start(get_service(), await request.body())
            if NDJSON in request.headers.get("accept", ""):
                return StreamingResponse(_lines(events), media_type=NDJSON)
            return ORJSONResponse(await _last(events))
        except Exception as exc:
            response = failure_response(exc)
            if response.status_code == 503:  # the runner: the search may be asked again shortly
                response.headers["Retry-After"] = "1"
            return response
