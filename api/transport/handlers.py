"""How every route answers: failures mapped to their status with the JSON error body of
api.transport.errors (pydantic validation: 422 naming each field; unparseable bodies: 400; the framework's
404/405; runner down or overloaded: 503 with Retry-After; anything else: 500 without internals),
the admin-token check of the detail routes, and the prediction answer. Every body carries the
request's id (monitoring/request_id.py)."""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from bentoml.exceptions import BentoMLException
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.prediction.flow import ANSWERED_BY
from api.prediction.schemas import HardnessRequest, PredictionRequest
from api.transport.errors import (
    ApiError,
    InvalidInput,
    MalformedBody,
    ServiceUnavailable,
    UnknownModelVersion,
    for_caller,
    internal_error_body,
    with_request_id,
)
from api.transport.http import ORJSONResponse
from monitoring.logs import REQUEST_ID
from monitoring.metrics import NO_MODEL
from monitoring.request_id import new_id

if TYPE_CHECKING:
    from api.core import ServiceCore

logger = logging.getLogger("armor.api")


def _validation_error(exc: RequestValidationError, model: type[BaseModel]) -> ApiError:
    errors = exc.errors()
    invalid = [e for e in errors if e["type"] == "json_invalid"]
    if invalid:
        # the parser's message (api/transport/strict_json.py)
        return MalformedBody.invalid_json(invalid[0].get("ctx", {}).get("error", ""))
    if any(e["loc"] == ("body",) and e["type"] in ("missing", "model_attributes_type") for e in errors):
        return MalformedBody.not_an_object()
    stripped: list[Any] = [{**e, "loc": tuple(e["loc"][1:]) if e["loc"][:1] == ("body",) else e["loc"]} for e in errors]
    return InvalidInput.from_validation(ValidationError.from_exception_data("request", stripped), model)


def _count(core: ServiceCore, family: str, status: int) -> None:
    core.metrics.tally.inc(core.metrics.request_counter(family, status, ANSWERED_BY.get()))


_HTTP_KINDS = {404: "not_found", 405: "method_not_allowed"}


def install_error_handlers(app: FastAPI, get_service: Callable[[], ServiceCore]) -> None:
    """Validation errors, HTTP errors of the framework (404, 405) and anything that escapes a
    route, all as the JSON error body; the routes themselves map their failures in ``_guarded``."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> ORJSONResponse:
        if exc.status_code == 400:  # the framework could not parse the body at all
            error = MalformedBody(
                "request body could not be parsed as JSON (invalid UTF-8, nesting too deep or "
                "a number too long); expected a JSON object like the documented example"
            )
            return ORJSONResponse(error.body(), status_code=400)
        body = with_request_id(
            {
                "error": {
                    "status": exc.status_code,
                    "type": _HTTP_KINDS.get(exc.status_code, "http_error"),
                    "message": str(exc.detail),
                }
            }
        )
        return ORJSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> ORJSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return ORJSONResponse(internal_error_body(), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> ORJSONResponse:
        family = request.url.path.rsplit("/", 1)[-1]  # a prediction route's path ends with its family
        service = get_service()
        known = service.flow.families.get(family)
        error = _validation_error(exc, known.request_model if known else PredictionRequest)
        if known:
            _count(service, family, int(error.status))
        return ORJSONResponse(error.body(), status_code=int(error.status))


# How a call to the runner service fails when it is down, restarting or overloaded: a 503.
RUNNER_FAILURES: tuple[type[Exception], ...] = (TimeoutError, BentoMLException, aiohttp.ClientError)
RUNNER_UNAVAILABLE = "the prediction runner is unavailable or overloaded; retry shortly"


def failure_response(exc: Exception) -> ORJSONResponse:
    """The answer to a route that raised: an ApiError's status and body (a 503 with Retry-After), a
    runner failure as 503 with Retry-After, anything else 500 without internals."""
    if isinstance(exc, ApiError):
        retry = {"Retry-After": "1"} if isinstance(exc, ServiceUnavailable) else None
        return ORJSONResponse(exc.body(), status_code=int(exc.status), headers=retry)
    if isinstance(exc, RUNNER_FAILURES):
        logger.warning("runner call failed: %s", type(exc).__name__)
        error = ServiceUnavailable(RUNNER_UNAVAILABLE)
        return ORJSONResponse(error.body(), status_code=int(error.status), headers={"Retry-After": "1"})
    logger.error("unhandled error", exc_info=exc)
    return ORJSONResponse(internal_error_body(), status_code=500)


async def _guarded(coro: Awaitable[Any]) -> ORJSONResponse:
    try:
        return ORJSONResponse(await coro)
    except Exception as exc:
        return failure_response(exc)


def admin(request: Request, token: str | None) -> bool:
    """Details are for everyone when no ADMIN_TOKEN is configured, else for its bearer only
    (``Authorization: Bearer <token>``, the scheme in any case: RFC 9110 section 11.1)."""
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def _result(call: Callable[[], Any]) -> Any:
    result = call()
    return await result if inspect.isawaitable(result) else result


async def guarded_get(call: Callable[[], Any]) -> ORJSONResponse:
    """A GET route's answer, its failures mapped like the prediction routes' (runner down: 503)."""
    return await _guarded(_result(call))


async def detail_or_summary(
    request: Request, token: str | None, detail: Callable[[], Any], summary: Callable[[], Any]
) -> ORJSONResponse:
    """The details for an admin (or for everyone when no ADMIN_TOKEN is set), else the summary."""
    return await guarded_get(detail if admin(request, token) else summary)


async def answer(
    core: ServiceCore,
    family: str,
    request: PredictionRequest | HardnessRequest,
    raw_key: str | None = None,
    is_admin: Callable[[], bool] = lambda: True,
) -> Response:
    """Run the flow; map every failure to its status here, so no exception escapes to the server
    (Starlette re-raises after a catch-all handler, and the connection would be dropped). An
    unknown model_version lists the stored ones only to an admin (``is_admin``, asked then)."""

    async def flow(request_id: str) -> bytes:
        try:
            return await core.flow.answer(family, request, request_id, raw_key)
        except UnknownModelVersion as exc:
            raise for_caller(exc, is_admin()) from None

    response = await _answered(core, family, flow)
    if response is None:  # the full path always answers or raises
        raise RuntimeError("the prediction flow gave no answer")
    return response


async def answer_repeat(core: ServiceCore, family: str, raw_key: str) -> Response | None:
    """The answer to an exact repeat from the response cache (api/transport/repeats.py), or None: the full
    path answers it."""
    if not core.flow.remembers(raw_key):  # most requests: no request id made, nothing counted
        return None
    return await _answered(core, family, lambda request_id: core.flow.repeat(family, raw_key, request_id))


async def _answered(core: ServiceCore, family: str, flow: Callable[[str], Awaitable[bytes | None]]) -> Response | None:
    """The flow's rendered answer (or its failure) as a response, counted; None: no answer. The
    request's id is the one monitoring/request_id.py set (a new one outside that middleware)."""
    given = REQUEST_ID.get()
    request_id = given if given is not None else new_id()
    token = None if given is not None else REQUEST_ID.set(request_id)
    ANSWERED_BY.set(NO_MODEL)  # the flow sets the tag that answers
    response: Response
    try:
        try:
            body = await flow(request_id)
        except Exception as exc:
            response = failure_response(exc)
        else:
            if body is None:
                return None
            response = Response(body, media_type="application/json")
        _count(core, family, response.status_code)
        return response
    finally:
        if token is not None:
            REQUEST_ID.reset(token)
