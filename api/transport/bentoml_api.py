"""BentoML's own endpoints (``@bentoml.api`` methods of service.py): the same requests and answers as
``/api/v1/predict/...``, through the same one prediction flow, for BentoML's clients
(``bentoml.SyncHTTPClient``/``AsyncHTTPClient``), its playground and every tool that reads a Bento's
schema (``/schema.json``).

BentoML validates the body against the pydantic model and answers its own 400 when it does not
fit; a refusal of the flow (an unknown model version, a runner that is down) is the /api/v1 route's
error answer, raised as a FlowFailure with its status (what BentoML's clients and a direct call
see) and kept for api/transport/bentoml_errors.py, which sends it in place of BentoML's body. Both
come out as /api/v1's JSON error body with the request's id.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
from bentoml.exceptions import BentoMLException
from pydantic import BaseModel
from starlette.responses import Response

from api.batch.io import JsonEncoder, json_job
from api.batch.routes import job_stream
from api.prediction.schemas import (
    BatchRequest,
    BatchSummary,
    ErrorInfo,
    FeatureImportance,
    HardnessRequest,
    HardnessResponse,
    PredictionRequest,
    PredictionResponse,
    PropertyPrediction,
)
from api.transport.bentoml_errors import keep
from api.transport.errors import for_caller
from api.transport.handlers import answer, failure_response, guarded_get
from features.catalogue import TARGETS

if TYPE_CHECKING:
    from api.core import ServiceCore


class FlowFailure(BentoMLException):
    """A refusal of the prediction flow, with its status and the message of the JSON error body."""

    def __init__(self, message: str, status: int):
        super().__init__(message, error_code=HTTPStatus(status))


class _WithoutNulls(BaseModel):
    """Rendered without its null fields. BentoML's schema drops the ``null`` of an optional field
    (``list | None`` becomes ``array``) and its clients fail to decode a null there; every such field
    defaults to None, so leaving it out keeps the answer's meaning."""

    def model_dump_json(self, **kwargs: Any) -> str:
        return super().model_dump_json(**(kwargs | {"exclude_none": True}))


class PredictionAnswer(_WithoutNulls, PredictionResponse):
    """The body of ``/api/v1/predict/{mechanical,ballistic}``."""


class HardnessAnswer(_WithoutNulls, HardnessResponse):
    """The body of ``/api/v1/predict/hardness``."""


async def _body(core: ServiceCore, family: str, request: PredictionRequest | HardnessRequest) -> dict[str, Any]:
    """The body ``/api/v1/predict/<family>`` gives for ``request`` (counted and logged as that route
    does); a refusal raises FlowFailure with the route's status."""
    return _accepted(await answer(core, family, request, is_admin=lambda: _everyone_admin(core)))


def _accepted(response: Response) -> dict[str, Any]:
    """The body of an /api/v1 answer that is a 200; any other is refused (``_refused``)."""
    if response.status_code != HTTPStatus.OK:
        _refused(response)
    body: dict[str, Any] = orjson.loads(bytes(response.body))
    return body


def _refused(response: Response) -> NoReturn:
    """Raise the /api/v1 error answer ``response`` as a FlowFailure (its status and message), and
    keep it to be sent as it is (api/transport/bentoml_errors.py)."""
    keep(response)
    error = orjson.loads(bytes(response.body)).get("error", {})
    raise FlowFailure(str(error.get("message", "request refused")), response.status_code)


async def material_answer(core: ServiceCore, family: str, request: PredictionRequest) -> PredictionAnswer:
    return PredictionAnswer.model_validate(await _body(core, family, request))


async def hardness_answer(core: ServiceCore, request: HardnessRequest) -> HardnessAnswer:
    return HardnessAnswer.model_validate(await _body(core, "hardness", request))


class BatchAnswerRow(BaseModel):
    """A result of the /batch route: a row's predictions, or its error. One model with optional fields,
    not the route's union (BentoML's client decodes a union as its first member and drops ``error``)."""

    row: int
    predictions: dict[str, PropertyPrediction] | None = None
    feature_importance: list[FeatureImportance] | None = None
    contribution_base: dict[str, float] | None = None
    warnings: list[str] | None = None
    model_version: str | None = None
    cached: bool | None = None
    error: ErrorInfo | None = None


class BatchAnswer(_WithoutNulls, BaseModel):
    """The JSON body of ``/api/v1/predict/{mechanical,ballistic}/batch``."""

    results: list[BatchAnswerRow]
    summary: BatchSummary


async def batch_answer(core: ServiceCore, family: str, request: BatchRequest) -> BatchAnswer:
    """The JSON answer of the /batch route to the same body (the same limits, row errors and
    screening: the body goes through the route's own reader)."""
    try:
        job = json_job(orjson.dumps(request.model_dump(exclude_unset=True)), core.settings.batch_routes.max_rows)
        stream = await job_stream(core, family, job, JsonEncoder(TARGETS[family]))
        rendered = b"".join([piece async for piece in stream])
    except Exception as exc:  # mapped as the route maps it (api/batch/routes.py)
        _refused(failure_response(for_caller(exc, _everyone_admin(core))))
    return BatchAnswer.model_validate_json(rendered)


def _everyone_admin(core: ServiceCore) -> bool:
    """BentoML's endpoints take no admin token: with ADMIN_TOKEN set, their callers are not admins
    (an unknown version's 404 lists no stored versions), as on /api/v1 without the token."""
    return not core.settings.serving.admin_token


async def typed_models(core: ServiceCore) -> dict[str, Any]:
    """The serving model of every family with its stored metrics (``/api/v1/models``'s summary, which
    is what a caller without the admin token sees there); a runner that cannot answer: its 503."""
    return _accepted(await guarded_get(core.models_summary))
