"""The runner: one BentoML service that owns every family's models (mechanical, ballistic,
hardness) and answers rows of features for them.

Batching happens before the hop: each API worker's Coalescer (api/prediction/coalescer.py) stacks the rows of
its concurrent requests of one kind into one call, with no timer, so a call arriving here is
already a batch sized by the load (at most MAX_BATCH_SIZE rows). The endpoint then runs it at once
on the event loop: BentoML's adaptive-batching dispatcher behind it only added its learned wait
and a thread hop per call (docs/performance.md, issue 12), and one service for all families
replaced three sets of worker processes (memory at rest, same document).

Workers: PREDICTION_WORKERS (default: the CPU cores). Each worker runs single-threaded NumPy
(settings.worker_settings) so workers do not oversubscribe the cores.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import bentoml
import numpy as np

from caching import ExpirySweeper
from features.families import ALL_FAMILIES
from model_registry import store
from monitoring.instrumented import InstrumentedLocalCache, instrumented_local
from monitoring.logs import configure as configure_logging
from monitoring.metrics import Metrics
from monitoring.request_id import RequestIdentity
from monitoring.tally import TallyFlusher
from monitoring.window import Ring
from runners.contract import RowKind
from runners.core import RunnerCore
from runners.hop import HopServer, serve_directory, socket_paths
from serving.drain import die_with_parent
from settings import bentoml_service_options, worker_settings

SETTINGS = worker_settings()
logger = logging.getLogger("armor.runner")

_SERVICE_CONFIG = {
    **bentoml_service_options(SETTINGS.serving, SETTINGS.serving.prediction_workers),
    # The API's client for a dependency rebuilds its aiohttp session every `max_requests`
    # (default 100) requests and closes the old one while requests are still in flight on it:
    # that was the source of the 500 ServerDisconnectedError under concurrency
    # (_bentoml_impl/client/proxy2.py, SessionManager). Never recycle it.
    "runner_connection": {"max_requests": 10**9, "max_age": 1e9},
}


def _model_ref(family: str, pinned: str | None) -> bentoml.models.BentoModel:
    """The model this runner serves by default, resolved by the registry (the one place that
    turns a pin, a bare version or nothing into a tag); declared so `bentoml build` packs it."""
    return bentoml.models.BentoModel(str(store.resolve(family, pinned).tag))


@bentoml.service(name="armor_models", **_SERVICE_CONFIG)
class ModelRunner:
    """Every family's models in each worker, with the prediction cache in front of them."""

    # class attributes, one per family: BentoML packs the models it finds here into a built Bento
    mechanical_model = _model_ref("mechanical", SETTINGS.models.pins["mechanical"])
    ballistic_model = _model_ref("ballistic", SETTINGS.models.pins["ballistic"])
    hardness_model = _model_ref("hardness", SETTINGS.models.pins["hardness"])

    def __init__(self) -> None:
        configure_logging()
        metrics = Metrics()
        cache = instrumented_local("prediction", SETTINGS.prediction_cache, metrics)
        try:
            self.cores = {family: self._core(family, metrics, cache) for family in ALL_FAMILIES}
        except store.ModelIntegrityError as exc:
            _stop_the_service(exc)
            raise
        for core in self.cores.values():
            core.warm_up()
        self.sweeper = ExpirySweeper([cache] if cache else [], SETTINGS.monitoring.sweep_interval_s)
        self.tally = metrics.tally  # the runner's series and BentoML's traffic series, written once a second
        self.flusher = TallyFlusher(self.tally)
        self.hop = self._hop_server()

    def _hop_server(self) -> HopServer | None:
        """This worker's socket for the default models (runners/hop.py), unless RUNNER_HOP=bentoml."""
        directory, index = serve_directory(SETTINGS.monitoring.shared_dir), bentoml.server_context.worker_index
        if SETTINGS.batching.hop != "socket" or directory is None or index is None:
            return None
        path = socket_paths(directory, index)[-1]
        return HopServer(
            path,
            ALL_FAMILIES,
            self._answer,
        )

    def _answer(self, family: str, rows: np.ndarray, kind: RowKind) -> np.ndarray:
        """A hop call's packed rows (runners/hop.py): the default model's."""
        return self.cores[family].answer(rows, kind)

    def _core(self, family: str, metrics: Metrics, cache: InstrumentedLocalCache | None) -> RunnerCore:
        model: bentoml.models.BentoModel = getattr(self, f"{family}_model")
        shared_dir = SETTINGS.monitoring.shared_dir
        return RunnerCore(
            family, str(model.tag), SETTINGS.models.cache_max_mb, metrics, cache, Ring(shared_dir, f"batch_{family}")
        )

    @bentoml.on_startup
    async def _start_background(self) -> None:
        die_with_parent()
        self.sweeper.start()
        self.flusher.start()
        if self.hop is not None:
            await self.hop.start()

    @bentoml.on_shutdown
    async def _stop_background(self) -> None:
        await self.sweeper.stop()
        await self.flusher.stop()
        if self.hop is not None:
            await self.hop.close()

    def __is_ready__(self) -> bool:
        return all(core.ready for core in self.cores.values())

    @bentoml.api
    async def predict(
        self,
        features: np.ndarray,
        family: str,
        version: str | None = None,
        explain: bool = False,
        cache: bool = True,
        materials: bool = False,
    ) -> np.ndarray:
        """Packed rows (runners.contract) of the family's default model or of a named version (a
        version not yet loaded is loaded off the event loop); ``cache`` False: past the prediction
        cache (a batch screen's rows); ``materials``: ``features`` are material rows, featurised
        here (runners/core.py)."""
        core, kind = self.cores[family], RowKind(explain, cache, materials)
        if version is None:
            return core.answer(features, kind)
        return await asyncio.to_thread(core.answer, features, kind, version)

    @bentoml.api
    async def card(self, family: str, version: str | None = None) -> dict[str, Any]:
        """The card of the family's default model or of a version (runners.contract.CardReply as a
        dict; read from the registry off the event loop)."""
        reply = await asyncio.to_thread(self.cores[family].card, version)
        return reply.to_dict()


def _stop_the_service(exc: store.ModelIntegrityError) -> None:
    """A model file that fails its checksum will fail it again after any restart: instead of
    letting BentoML restart this worker forever while /livez says 200 (issue 14, item 2), say
    which file in one line and stop the whole ``bentoml serve`` (this worker's parent), so the
    process exits and an orchestrator shows the failure."""
    logger.critical("%s; stopping the service: restarting cannot repair a model file", exc)
    os.kill(os.getppid(), signal.SIGTERM)


def _fix_media_types(service: Any) -> None:
    """BentoML finds an endpoint's response media type by generating the JSON schema of its output
    model on every response (``IOMixin.mime_type``): 17 % of the runner's CPU on the cold path
    (py-spy, issue 12). The output model never changes, so its media type is set once, through
    the class attribute BentoML checks first."""
    for method in service.apis.values():
        method.output_spec.media_type = method.output_spec.mime_type()


_fix_media_types(ModelRunner)
# the API's calls through BentoML's client carry the request's id (W3C baggage) and traceparent:
# the runner's log lines for them carry both (monitoring/request_id.py)
ModelRunner.add_asgi_middleware(RequestIdentity, access_log=SETTINGS.serving.access_log)  # type: ignore[attr-defined]
