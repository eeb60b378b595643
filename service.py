"""The HTTP face: a BentoML service that validates, caches, featurises and calls the runner.

Routes live in api/app.py (a FastAPI app mounted on this service); the work lives in api/,
features/, runners/, caching/ and monitoring/; the web page (ui/) is mounted on the same app at
/ui/, and / is sent there in place of BentoML's Swagger page. /docs.json is BentoML's OpenAPI
document made valid (api/transport/openapi.py); BentoML's typed endpoints (/predict_mechanical, ...)
serve its clients; /livez, /readyz and /metrics stay as BentoML serves them. The settings are
built here, once, and passed down.

    bentoml serve service:ArmorService --port 3000
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import asdict
from typing import Any

import bentoml
import numpy as np
import orjson
from starlette.exceptions import HTTPException
from starlette.routing import Mount

from api.app import create_app
from api.core import ServiceCore
from api.prediction.schemas import BatchRequest, HardnessRequest, PredictionRequest
from api.transport import header_timeout
from api.transport.access import trust_forwarded_from
from api.transport.bentoml_api import (
    BatchAnswer,
    HardnessAnswer,
    PredictionAnswer,
    batch_answer,
    hardness_answer,
    material_answer,
    typed_models,
)
from api.transport.bentoml_errors import TypedErrors, typed_routes
from api.transport.deadline import ResponseDeadline
from api.transport.errors import NotFound
from features.families import ALL_FAMILIES
from monitoring import traffic
from monitoring.logs import configure as configure_logging
from monitoring.request_id import RequestIdentity, carried
from runners.contract import RowKind
from runners.hop import SocketHop, serve_directory, socket_paths
from runners.services import ModelRunner
from serving import control
from serving.drain import die_with_parent, draining
from serving.readiness import Readiness
from settings import bentoml_service_options, worker_settings

SETTINGS = worker_settings()
# the process manager's endpoints: private Unix sockets, not 127.0.0.1 TCP; its stop drains (serving/control.py)
# with the prediction log on, a writer process of its own beside the API workers (serving/log_writer.py)
control.install(SETTINGS.shutdown, log_writer=SETTINGS.prediction_log.enabled)
configure_logging()  # the arbiter's own lines (the drain) as JSON too
# uvicorn has no head deadline and httptools no head size limit (api/transport/header_timeout.py)
header_timeout.install(
    SETTINGS.serving.header_read_timeout_s, SETTINGS.serving.header_max_bytes, SETTINGS.serving.header_max_count
)
trust_forwarded_from(SETTINGS.access.trusted_proxies)  # before BentoML configures uvicorn in this worker


class DependencyClient:
    """One family's side of the runner service, as api.prediction.predictor.RunnerClient: the default model
    through the socket hop when a runner socket answers (runners/hop.py), everything else (and the
    default model when no socket answers) through BentoML's client, with the request's id and
    traceparent (monitoring/request_id.py). RUNNER_UNAVAILABLE_S (``unavailable_s``): a hop call
    fails once its runner has sent nothing for that long (runners/hop.py), a call through
    BentoML's client once it has taken that long while no hop call was answered either; either
    raises TimeoutError: 503 + Retry-After."""

    def __init__(self, dependency: Any, family: str, hop: SocketHop | None = None, unavailable_s: float = 5.0):
        self._dep, self.family, self.hop, self.unavailable_s = dependency.to_async, family, hop, unavailable_s

    async def predict(self, rows: np.ndarray, version: str | None, kind: RowKind) -> np.ndarray:
        if version is None and self.hop is not None:
            answer = await self.hop.predict(self.family, rows, kind)  # bounded by the runner's silence
            if answer is not None:
                return answer
        with carried():
            # the endpoint's arguments are the kind's fields (runners/services.py ModelRunner.predict)
            call = self._dep.predict(rows, family=self.family, version=version, **asdict(kind))
            result: np.ndarray = await self._unless_silent(call)
        return result

    async def card(self, version: str | None = None) -> dict[str, Any]:
        with carried():
            result: dict[str, Any] = await self._unless_silent(self._dep.card(family=self.family, version=version))
        return result

    async def _unless_silent(self, call: Awaitable[Any]) -> Any:
        """``call``'s result; TimeoutError once it has waited ``unavailable_s`` and the runner has not
        answered a hop call within that time either (a runner busy with batches answers BentoML's
        endpoints late, and keeps its calls; the request's own deadline still applies)."""
        task = asyncio.ensure_future(call)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.unavailable_s)
                if done:
                    return task.result()
                if self.hop is None or not self.hop.heard_within(self.unavailable_s):
                    raise TimeoutError(f"the runner did not answer within {self.unavailable_s:g} s")
        finally:
            task.cancel()


# looked up once: every ``bentoml.<name>`` goes through the package's lazy ``__getattr__``, an
# ``import_module`` per access (~3 % of an API worker's time on the cold path, where each request
# asks for its service twice; issue 12)
_current_service = bentoml.get_current_service


def _current() -> ServiceCore:
    core: ServiceCore = _current_service().core
    return core


APP = create_app(
    _current,
    SETTINGS.serving.max_request_bytes,
    SETTINGS.batch_routes,
    SETTINGS.serving.body_read_timeout_s,
    SETTINGS.access,
    openapi_source=lambda: _bentoml_openapi(),
    access_log=SETTINGS.serving.access_log,
)


@bentoml.service(name="ceramic_armor", **bentoml_service_options(SETTINGS.serving, SETTINGS.serving.api_workers))
@bentoml.asgi_app(APP, path="")
class ArmorService:
    """Ceramic armor property prediction: mechanical, ballistic and hardness, with calibrated 95 % intervals."""

    models = bentoml.depends(ModelRunner)

    def __init__(self) -> None:
        configure_logging()
        self.hop = _socket_hop()
        bound_s = SETTINGS.serving.runner_unavailable_s
        clients = {f: DependencyClient(self.models, f, self.hop, bound_s) for f in ALL_FAMILIES}
        self.core = ServiceCore(SETTINGS, clients)
        self.tally = self.core.metrics.tally  # BentoML's traffic series go through it (monitoring/traffic.py)
        hop = self.hop
        self.readiness = Readiness(
            lambda: self.models.is_ready(1),
            SETTINGS.serving.readiness_check_s,
            draining(SETTINGS.shutdown),
            (lambda: hop.heard_within(2 * SETTINGS.serving.readiness_check_s)) if hop is not None else None,
        )

    async def __is_ready__(self) -> bool:
        """BentoML's /readyz: 200, or 503 with the reason as its body, within READINESS_CHECK_S
        (serving/readiness.py)."""
        reason = await self.readiness.reason()
        if reason is not None:
            raise HTTPException(status_code=503, detail=reason)
        return True

    @bentoml.on_startup
    async def _start_background(self) -> None:
        die_with_parent()
        self.core.start_background()
        await self.core.warm_up()

    # BentoML's own endpoints (/predict_mechanical, ...): the bodies and answers of /api/v1/predict/...
    # through the same flow, for bentoml.SyncHTTPClient / AsyncHTTPClient and /schema.json
    # (api/transport/bentoml_api.py). The positional-only argument makes the whole body the model.
    @bentoml.api(route="/predict_mechanical")
    async def predict_mechanical(self, request: PredictionRequest, /) -> PredictionAnswer:
        """Density, hardness, toughness, modulus, strengths and Poisson ratio, with 95 % intervals."""
        return await material_answer(self.core, "mechanical", request)

    @bentoml.api(route="/predict_ballistic")
    async def predict_ballistic(self, request: PredictionRequest, /) -> PredictionAnswer:
        """V50, penetration resistance, back-face deformation and multi-hit capability."""
        return await material_answer(self.core, "ballistic", request)

    @bentoml.api(route="/predict_hardness")
    async def predict_hardness(self, request: HardnessRequest, /) -> HardnessAnswer:
        """Vickers hardness of a chemical formula at one or several loads, with 95 % intervals."""
        return await hardness_answer(self.core, request)

    @bentoml.api(route="/predict_mechanical_batch")
    async def predict_mechanical_batch(self, request: BatchRequest, /) -> BatchAnswer:
        """Mechanical predictions for many materials (the JSON of /api/v1/predict/mechanical/batch)."""
        return await batch_answer(self.core, "mechanical", request)

    @bentoml.api(route="/predict_ballistic_batch")
    async def predict_ballistic_batch(self, request: BatchRequest, /) -> BatchAnswer:
        """Ballistic predictions for many materials (the JSON of /api/v1/predict/ballistic/batch)."""
        return await batch_answer(self.core, "ballistic", request)

    @bentoml.api(route="/models")
    async def models_serving(self) -> dict[str, Any]:
        """The model serving each family (its tag)."""
        return await typed_models(self.core)

    @bentoml.on_shutdown
    async def _close(self) -> None:
        await self.core.close()
        if self.hop is not None:
            await self.hop.close()


# BentoML's own endpoints (/readyz, /livez, /metrics, /predict_*, /ui/...) get the request's id too;
# the /api/v1/* shortcut has its own copy below
ArmorService.add_asgi_middleware(RequestIdentity, access_log=SETTINGS.serving.access_log)  # type: ignore[attr-defined]
# inside it (the id is set): the typed endpoints' errors in /api/v1's body (api/transport/bentoml_errors.py)
TYPED_ROUTES = typed_routes(ArmorService)
ArmorService.add_asgi_middleware(TypedErrors, routes=TYPED_ROUTES)  # type: ignore[attr-defined]
traffic.install(
    [getattr(route, "path", "") for route in APP.routes]
    + [f"/{name}" for name in ModelRunner.apis]  # type: ignore[attr-defined]  # a bentoml Service once decorated
    + list(TYPED_ROUTES),  # their own series, and their 404 (an unknown model_version) kept
    # /api/v1/* straight from BentoML's traffic metrics to the app, which keeps the request deadline
    lambda: _current_service().tally,  # this worker's service: the API's or the runner's
    # (with TRACING on, every request takes BentoML's path: its OpenTelemetry middleware makes the spans)
    None
    if SETTINGS.serving.tracing
    else traffic.Shortcut(
        ("/api/v1/", "/docs.json"),
        RequestIdentity(ResponseDeadline(APP, SETTINGS.serving.request_timeout_s), SETTINGS.serving.access_log),
    ),
    lambda: orjson.dumps(NotFound("no such path; the routes are listed at /docs.json").body()),
    mounts=tuple(f"{route.path}/" for route in APP.routes if isinstance(route, Mount)),  # the web page's files
)


def _bentoml_openapi() -> dict[str, Any]:
    """BentoML's OpenAPI document of this service, published valid at /docs.json (api/transport/openapi.py)."""
    service: Any = ArmorService  # a bentoml Service once decorated
    document: dict[str, Any] = service.openapi_spec.asdict()
    return document


def _socket_hop() -> SocketHop | None:
    """The runner workers' sockets (RUNNER_HOP=socket, the default, under bentoml serve)."""
    directory = serve_directory(SETTINGS.monitoring.shared_dir)
    if SETTINGS.batching.hop != "socket" or directory is None:
        return None
    paths = socket_paths(directory, SETTINGS.serving.prediction_workers)
    return SocketHop(paths, ALL_FAMILIES, silence_s=SETTINGS.serving.runner_unavailable_s)
