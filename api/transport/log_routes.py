"""The routes that read the prediction log (predlog/): GET /api/v1/predictions (filtered, paged,
JSON or CSV; for the ADMIN_TOKEN's bearer when it is set, 401 otherwise: it holds what clients
asked) and GET /api/v1/drift (aggregates only: open to all, as /api/v1/performance). Both are 404
with the log off, 503 when its database does not answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response

from api.prediction.schemas import GET_ERRORS
from api.transport.errors import ApiError, InvalidInput, NotFound, ServiceUnavailable, Unauthorized
from api.transport.handlers import admin, failure_response, guarded_get
from api.transport.http import ORJSONResponse
from predlog import export
from predlog.queue import Log
from predlog.store import DATABASE_ERRORS

if TYPE_CHECKING:
    from api.core import ServiceCore


_LOG_OFF = "the prediction log is off (PREDICTION_LOG=false)"


def _log_of(http: Request, core: ServiceCore) -> Log:
    if not admin(http, core.settings.serving.admin_token):
        raise Unauthorized("the prediction log needs `Authorization: Bearer <ADMIN_TOKEN>`")
    if core.prediction_log is None:
        raise NotFound(_LOG_OFF)
    return core.prediction_log


async def drift(core: ServiceCore) -> dict[str, Any]:
    log, reporter = core.prediction_log, core.drift
    if log is None or reporter is None:
        raise NotFound(_LOG_OFF)
    models = await core.serving_datasets()

    async def read() -> dict[str, Any]:
        await log.flush()
        return await reporter.report(models)

    report: dict[str, Any] = await _from_database(read)
    return report


async def _from_database(read: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await read()
    except DATABASE_ERRORS:
        raise ServiceUnavailable("the prediction log's database is unavailable; retry shortly") from None


async def predictions(http: Request, core: ServiceCore) -> Response:
    log = _log_of(http, core)
    params = dict(http.query_params)
    try:
        query, as_csv = export.query_of(params), export.wants_csv(params, http.headers.get("accept", ""))
    except export.QueryError as exc:
        detail = [{"field": exc.field, "message": exc.message}]
        raise InvalidInput(f"invalid request: {exc.field}: {exc.message}", detail) from None

    async def read() -> list[tuple[Any, ...]]:
        await log.flush()  # this worker's answers so far are in the page
        await log.store.open()
        return await log.store.select(query)

    found = export.page(await _from_database(read), query.limit)
    headers = {"X-Next-Cursor": found.next_cursor} if found.next_cursor else None  # CSV has no field for it
    if as_csv:
        return Response(export.to_csv(found), media_type="text/csv", headers=headers)
    return Response(export.to_json(found), media_type="application/json", headers=headers)


def register_log_routes(app: FastAPI, get_service: Callable[[], ServiceCore]) -> None:
    @app.get(
        "/api/v1/predictions",
        summary="the prediction log, newest first: filter by since/until (ISO 8601 or unix s), family, "
        "model_tag, material_key, warning (a substring); limit (1-1000) and cursor (a page's next_cursor); "
        "format=json|csv (or Accept: text/csv); for the ADMIN_TOKEN's bearer when it is set",
        responses=GET_ERRORS,
    )
    async def prediction_log(http: Request) -> Response:
        try:
            return await predictions(http, get_service())
        except ApiError as exc:
            return failure_response(exc)

    @app.get(
        "/api/v1/drift",
        summary="per input, the Kolmogorov-Smirnov distance between the inputs logged in the last "
        "DRIFT_WINDOW_S and the serving model's training data, and the share of answers with warnings",
        responses=GET_ERRORS,
    )
    async def drift_report() -> ORJSONResponse:
        return await guarded_get(lambda: drift(get_service()))
