"""The HTTP face: a BentoML service that validates, caches, featurises and calls the two runners.

Routes live in api/app.py (a FastAPI app mounted on this service); the work lives in api/,
features/, runners/, caching/ and monitoring/. BentoML's /livez, /readyz, /metrics and the
Swagger UI at / stay as BentoML serves them.

    bentoml serve service:ArmorService --port 3000
"""

from __future__ import annotations

from settings import worker_settings

SETTINGS = worker_settings()  # before NumPy-backed imports: it sets the thread variables

import bentoml  # noqa: E402
import numpy as np  # noqa: E402

from api.app import create_app  # noqa: E402
from api.core import ServiceCore  # noqa: E402
from monitoring.logs import configure as configure_logging  # noqa: E402
from runners.services import BallisticRunner, MechanicalRunner  # noqa: E402


class DependencyClient:
    """Adapts a BentoML dependency (runner service) to api.predictor.RunnerClient."""

    def __init__(self, dependency):
        self._dep = dependency.to_async

    async def predict(self, features: np.ndarray) -> np.ndarray:
        return await self._dep.predict(features)

    async def explain(self, features: np.ndarray) -> np.ndarray:
        return await self._dep.explain(features)

    async def predict_version(self, features: np.ndarray, version: str, explain: bool) -> np.ndarray:
        return await self._dep.predict_version(features, version=version, explain=explain)

    async def card(self, version: str | None = None) -> dict:
        return await self._dep.card(version=version)


def _current():
    return bentoml.get_current_service().core


# BentoML's own access log stays off: ACCESS_LOG switches our JSON access line (monitoring/logs.py),
# which carries the request id.
@bentoml.service(
    name="ceramic_armor",
    workers=SETTINGS.api_workers,
    traffic={"timeout": 30},
    logging={"access": {"enabled": False}},
    tracing={"excluded_urls": [".*"]},
)
@bentoml.asgi_app(create_app(_current, SETTINGS.max_request_bytes), path="")
class ArmorService:
    """Ceramic armor property prediction: mechanical and ballistic, with calibrated 95 % intervals."""

    mechanical = bentoml.depends(MechanicalRunner)
    ballistic = bentoml.depends(BallisticRunner)

    def __init__(self) -> None:
        configure_logging()
        self.core = ServiceCore(
            SETTINGS, {"mechanical": DependencyClient(self.mechanical), "ballistic": DependencyClient(self.ballistic)}
        )

    @bentoml.on_startup
    async def _start_background(self) -> None:
        self.core.sweeper.start()
        await self.core.warm_up()
