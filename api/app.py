"""The HTTP routes /api/v1/* and /health: a FastAPI app mounted on the BentoML service (BentoML's
passive mount only claims the paths this app has, and merges its OpenAPI paths into BentoML's
document at /docs.json and the Swagger UI at /).

Errors: every ApiError becomes its status with the JSON body of api.errors; pydantic's
validation errors become 422 naming each field path; malformed or empty JSON is a 400; a body
over MAX_REQUEST_BYTES is a 413; anything unexpected is a 500 without internals.
"""

from __future__ import annotations

import hmac
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from bentoml.exceptions import BentoMLException
from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import ApiError, BodyTooLarge, InvalidInput, MalformedBody, ServiceUnavailable, internal_error_body
from api.schemas import EXAMPLE_REQUEST, PredictionRequest, PredictionResponse
from monitoring.logs import REQUEST_ID

logger = logging.getLogger("armor.api")
access_log = logging.getLogger("armor.access")


class ORJSONResponse(JSONResponse):
    """JSON rendered by orjson (numpy-aware, several times faster than the standard library)."""

    def render(self, content) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


SERVICE_VERSION = "0.1.0"
_EXAMPLES: dict[str, Any] = {"SiC-B4C-Al2O3": {"summary": "the documented example", "value": EXAMPLE_REQUEST}}


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return MalformedBody("request body is not valid JSON; expected a JSON object like the documented example")
    if any(e["loc"] == ("body",) and e["type"] in ("missing", "model_attributes_type") for e in errors):
        return MalformedBody("request body must be a non-empty JSON object like the documented example")
    stripped: list[Any] = [{**e, "loc": tuple(e["loc"][1:]) if e["loc"][:1] == ("body",) else e["loc"]} for e in errors]
    return InvalidInput.from_validation(ValidationError.from_exception_data("request", stripped), PredictionRequest)


class BodySizeLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413 before they are parsed. A declared
    size (Content-Length) is checked at once; a body without one (chunked transfer) is read here,
    at most ``max_bytes`` + 1 bytes, and handed on only if it fits."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                return await self._refuse(send)
            return await self.app(scope, receive, send)
        messages = await self._read_within_limit(receive)
        if messages is None:
            return await self._refuse(send)
        replay = iter(messages)
        return await self.app(scope, lambda: self._next(replay, receive), send)

    async def _read_within_limit(self, receive) -> list[dict] | None:
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            if message["type"] != "http.request" or not message.get("more_body", False):
                return messages

    @staticmethod
    async def _next(replay, receive) -> dict:
        return next(replay, None) or await receive()

    async def _refuse(self, send):
        error = BodyTooLarge(f"request body over the limit of {self.max_bytes} bytes")
        await JSONResponse(error.body(), status_code=int(error.status))({"type": "http"}, None, send)


def _count(core, family: str, status: int) -> None:
    core.metrics.requests.labels(family, f"{status // 100}xx").inc()


_HTTP_KINDS = {404: "not_found", 405: "method_not_allowed"}


def install_error_handlers(app: FastAPI, get_service: Callable[[], Any]) -> None:
    """Validation errors, HTTP errors of the framework (404, 405) and anything that escapes a
    route, all as the JSON error body; the routes themselves map their failures in ``_guarded``."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # the framework could not parse the body at all
            error = MalformedBody("request body could not be parsed as JSON (invalid UTF-8, nesting too deep or "
                                  "a number too long); expected a JSON object like the documented example")
            return ORJSONResponse(error.body(), status_code=400)
        body = {"error": {"status": exc.status_code, "type": _HTTP_KINDS.get(exc.status_code, "http_error"),
                          "message": str(exc.detail)}}
        return ORJSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        logger.exception("unhandled error on %s", request.url.path)
        return ORJSONResponse(internal_error_body(), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        error = _validation_error(exc)
        family = request.url.path.rsplit("/", 1)[-1]
        if family in ("mechanical", "ballistic"):
            _count(get_service(), family, int(error.status))
        return ORJSONResponse(error.body(), status_code=int(error.status))



async def _guarded(coro) -> ORJSONResponse:
    try:
        return ORJSONResponse(await coro)
    except ApiError as exc:
        return ORJSONResponse(exc.body(), status_code=int(exc.status))
    except (TimeoutError, BentoMLException, aiohttp.ClientError) as exc:
        logger.warning("runner call failed: %s", type(exc).__name__)
        error = ServiceUnavailable("the prediction runner is unavailable or overloaded; retry shortly")
        return ORJSONResponse(error.body(), status_code=int(error.status), headers={"Retry-After": "1"})
    except Exception:
        logger.exception("unhandled error")
        return ORJSONResponse(internal_error_body(), status_code=500)


def admin(request: Request, token: str | None) -> bool:
    """Details are for everyone when no ADMIN_TOKEN is configured, else for its bearer only."""
    if not token:
        return True
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


async def _result(call: Callable[[], Any]) -> Any:
    result = call()
    return await result if inspect.isawaitable(result) else result


async def guarded_get(call: Callable[[], Any]) -> ORJSONResponse:
    """A GET route's answer, its failures mapped like the prediction routes' (runner down: 503)."""
    return await _guarded(_result(call))


async def answer(core, family: str, request: PredictionRequest) -> ORJSONResponse:
    """Run the flow; map every failure to its status here, so no exception escapes to the server
    (Starlette re-raises after a catch-all handler, and the connection would be dropped)."""
    request_id = uuid.uuid4().hex
    token = REQUEST_ID.set(request_id)
    started = time.perf_counter()
    try:
        response = await _guarded(core.flow.predict(family, request, request_id))
        _count(core, family, response.status_code)
        if core.settings.access_log:
            access_log.info("request", extra={"endpoint": family, "status": response.status_code,
                                              "duration_ms": round((time.perf_counter() - started) * 1e3, 3)})
        return response
    finally:
        REQUEST_ID.reset(token)


def create_app(get_service: Callable[[], Any], max_request_bytes: int) -> FastAPI:
    """Routes /api/v1/* and /health; ``get_service`` returns the ServiceCore (of the BentoML service
    instance when served; built directly in tests)."""
    app = FastAPI(title="Ceramic armor ML API", version=SERVICE_VERSION, default_response_class=ORJSONResponse,
                  docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app, get_service)
    app.add_middleware(BodySizeLimit, max_bytes=max_request_bytes)
    body = Body(openapi_examples=_EXAMPLES)

    # response_model documents the body; handlers return a ready ORJSONResponse so the dict the
    # flow built is not validated a second time on the way out.
    @app.post("/api/v1/predict/mechanical", response_model=PredictionResponse,
              summary="Density, hardness, toughness, modulus, strengths and Poisson ratio, with 95 % intervals")
    async def predict_mechanical(request: PredictionRequest = body):
        return await answer(get_service(), "mechanical", request)

    @app.post("/api/v1/predict/ballistic", response_model=PredictionResponse,
              summary="V50, penetration resistance, back-face deformation and multi-hit capability")
    async def predict_ballistic(request: PredictionRequest = body):
        return await answer(get_service(), "ballistic", request)

    @app.get("/health", summary="cheap liveness: status and version")
    @app.get("/api/v1/health", summary="cheap liveness: status and version")
    async def health():
        return await guarded_get(lambda: get_service().health())

    @app.get("/api/v1/performance", summary="cache, latency, throughput, batching and model-cache figures, "
             "aggregated over all worker processes")
    async def performance():
        return await guarded_get(lambda: get_service().performance())

    @app.get("/api/v1/status", summary="uptime, CPU and memory of the service's processes and the machine, "
             "versions, loaded models, cache backend reachability (a summary without the admin token when "
             "ADMIN_TOKEN is set)")
    async def status(request: Request):
        core = get_service()
        if admin(request, core.settings.admin_token):
            return await guarded_get(core.status)
        return await guarded_get(core.status_summary)

    @app.get("/api/v1/models", summary="stored model families and versions with their metrics; which is serving "
             "(only the serving tags without the admin token when ADMIN_TOKEN is set)")
    async def models(request: Request):
        core = get_service()
        if admin(request, core.settings.admin_token):
            return await guarded_get(core.models)
        return await guarded_get(core.models_summary)

    return app
