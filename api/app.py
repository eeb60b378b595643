"""The HTTP routes /api/v1/* and /health: a FastAPI app mounted on the BentoML service (BentoML's
passive mount only claims the paths this app has, and merges its OpenAPI paths into BentoML's
document at /docs.json). The web page (ui/) is mounted last, at /ui/, with / sent there.

Errors: every ApiError becomes its status with the JSON body of api.transport.errors; pydantic's
validation errors become 422 naming each field path; malformed or empty JSON is a 400; a body
over MAX_REQUEST_BYTES is a 413; anything unexpected is a 500 without internals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Body, FastAPI, Request, Response

from api.batch.routes import BATCH_FAMILIES, batch_path, register_batch_routes
from api.design.routes import register_design_route
from api.prediction.schemas import (
    EXAMPLE_REQUEST,
    GET_ERRORS,
    HARDNESS_EXAMPLE,
    MAX_LOADS,
    PREDICTION_ERRORS,
    HardnessRequest,
    HardnessResponse,
    PredictionRequest,
    PredictionResponse,
)
from api.transport.access import AccessControl
from api.transport.handlers import admin, answer, answer_repeat, detail_or_summary, guarded_get, install_error_handlers
from api.transport.http import SERVICE_VERSION, ORJSONResponse
from api.transport.log_routes import register_log_routes
from api.transport.middleware import BODY_READ_TIMEOUT_S, BodySizeLimit
from api.transport.openapi import published_document
from api.transport.rate_limit import build_limiter
from api.transport.repeats import RepeatShortcut, raw_key_of
from api.transport.strict_json import StrictJSONRoute
from features.describe import document as catalogue_document
from features.families import ALL_FAMILIES
from monitoring.request_id import RequestIdentity
from settings import AccessSettings, BatchRouteSettings
from ui import serve as ui_page

if TYPE_CHECKING:
    from api.core import ServiceCore

__all__ = ["SERVICE_VERSION", "create_app"]

_EXAMPLES: dict[str, Any] = {"SiC-B4C-Al2O3": {"summary": "the documented example", "value": EXAMPLE_REQUEST}}


def _admin(request: Request, core: ServiceCore) -> bool:
    return admin(request, core.settings.serving.admin_token)


def create_app(
    get_service: Callable[[], ServiceCore],
    max_request_bytes: int,
    batch_routes: BatchRouteSettings = BatchRouteSettings(),
    body_read_timeout_s: float = BODY_READ_TIMEOUT_S,
    access: AccessSettings = AccessSettings(),
    openapi_source: Callable[[], dict[str, Any]] | None = None,
    access_log: bool = False,
) -> FastAPI:
    """Routes /api/v1/* and /health; ``get_service`` returns the ServiceCore (of the BentoML service
    instance when served; built directly in tests). The /batch routes take MAX_BATCH_ROWS materials
    and bodies up to MAX_BATCH_REQUEST_BYTES (``batch_routes``). ``openapi_source`` gives BentoML's
    OpenAPI document, published valid at /docs.json (api/transport/openapi.py). ``access_log``: a JSON
    line a request (ACCESS_LOG, monitoring/request_id.py)."""
    app = FastAPI(
        title="Ceramic armor ML API",
        version=SERVICE_VERSION,
        default_response_class=ORJSONResponse,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.router.route_class = StrictJSONRoute
    install_error_handlers(app, get_service)
    # added first: runs inside the body limits and the access check, before any parsing
    app.add_middleware(
        RepeatShortcut,
        answer=lambda family, raw: answer_repeat(get_service(), family, raw),
        paths={f"/api/v1/predict/{family}": family for family in ALL_FAMILIES},
    )
    batch_limits = {batch_path(f): batch_routes.max_request_bytes for f in BATCH_FAMILIES}
    app.add_middleware(
        BodySizeLimit, max_bytes=max_request_bytes, path_limits=batch_limits, body_timeout_s=body_read_timeout_s
    )
    if access.api_keys or access.rate_limit_per_minute:  # added last: runs first, before any body is read
        limit = access.rate_limit_per_minute
        limiter = build_limiter(limit, access.shared_dir, access.redis) if limit else None
        app.add_middleware(AccessControl, api_keys=access.api_keys, limiter=limiter)
    # outermost: every answer, refusals included, carries the request's id (a no-op behind service.py's copy)
    app.add_middleware(RequestIdentity, access_log=access_log)
    body = Body(openapi_examples=_EXAMPLES)
    hardness_body = Body(openapi_examples={"B4C": {"summary": "three loads", "value": HARDNESS_EXAMPLE}})

    # response_model documents the body; handlers return a ready ORJSONResponse so the dict the
    # flow built is not validated a second time on the way out.
    @app.post(
        "/api/v1/predict/mechanical",
        response_model=PredictionResponse,
        responses=PREDICTION_ERRORS,
        summary="Density, hardness, toughness, modulus, strengths and Poisson ratio, with 95 % intervals",
    )
    async def predict_mechanical(http: Request, request: PredictionRequest = body) -> Response:
        core = get_service()
        return await answer(core, "mechanical", request, raw_key_of(http.scope), lambda: _admin(http, core))

    @app.post(
        "/api/v1/predict/ballistic",
        response_model=PredictionResponse,
        responses=PREDICTION_ERRORS,
        summary="V50, penetration resistance, back-face deformation and multi-hit capability",
    )
    async def predict_ballistic(http: Request, request: PredictionRequest = body) -> Response:
        core = get_service()
        return await answer(core, "ballistic", request, raw_key_of(http.scope), lambda: _admin(http, core))

    @app.post(
        "/api/v1/predict/hardness",
        response_model=HardnessResponse,
        responses=PREDICTION_ERRORS,
        summary="Vickers hardness of a chemical formula at one or several loads, learned from 1,062 measured "
        "values (Zhang et al. 2021), with 95 % intervals and warnings far from the measured data",
    )
    async def predict_hardness(http: Request, request: HardnessRequest = hardness_body) -> Response:
        core = get_service()
        return await answer(core, "hardness", request, raw_key_of(http.scope), lambda: _admin(http, core))

    register_batch_routes(app, get_service, batch_routes)
    register_design_route(app, get_service)
    register_log_routes(app, get_service)

    @app.get("/health", summary="cheap liveness: status and version", responses=GET_ERRORS)
    @app.get("/api/v1/health", summary="cheap liveness: status and version", responses=GET_ERRORS)
    async def health() -> ORJSONResponse:
        return await guarded_get(lambda: get_service().health())

    @app.get(
        "/api/v1/performance",
        summary="cache, latency, throughput, batching and model-cache figures, aggregated over all worker processes",
        responses=GET_ERRORS,
    )
    async def performance() -> ORJSONResponse:
        return await guarded_get(lambda: get_service().performance())

    @app.get(
        "/api/v1/status",
        summary="uptime, CPU and memory of the service's processes and the machine, "
        "versions, loaded models, cache backend reachability (a summary without the admin token when "
        "ADMIN_TOKEN is set)",
        responses=GET_ERRORS,
    )
    async def status(request: Request) -> ORJSONResponse:
        core = get_service()
        return await detail_or_summary(request, core.settings.serving.admin_token, core.status, core.status_summary)

    @app.get(
        "/api/v1/models",
        summary="stored model families and versions with their metrics; which is serving "
        "(only the serving tags without the admin token when ADMIN_TOKEN is set)",
        responses=GET_ERRORS,
    )
    async def models(request: Request) -> ORJSONResponse:
        core = get_service()
        return await detail_or_summary(request, core.settings.serving.admin_token, core.models, core.models_summary)

    if openapi_source is not None:
        _publish_openapi(app, openapi_source)
    catalogue = catalogue_document() | {"limits": {"max_batch_rows": batch_routes.max_rows, "max_loads": MAX_LOADS}}

    @app.get(
        "/api/v1/catalogue",
        summary="families, targets and units, and every input with its unit, accepted range and default "
        "(what a client needs to build a form; the web page at /ui/ reads it)",
        responses=GET_ERRORS,
    )
    async def catalogue_route() -> ORJSONResponse:
        return ORJSONResponse(catalogue)

    ui_page.mount(app)  # last: the API routes stay first in the router
    return app


def _publish_openapi(app: FastAPI, source: Callable[[], dict[str, Any]]) -> None:
    """GET /docs.json: the document is built once, on the first request (the service exists by then)."""
    built: list[bytes] = []

    @app.get("/docs.json", include_in_schema=False)
    async def openapi_document() -> Response:
        if not built:
            description = "Ceramic armor property prediction with calibrated 95 % intervals; see the README."
            built.append(orjson.dumps(published_document(source(), SERVICE_VERSION, description)))
        return Response(built[0], media_type="application/json")
