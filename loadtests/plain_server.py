"""The baseline for the load tests: the same models and routes in plain uvicorn processes, with
no runner hop and no caches (loadtests/side_by_side.py runs it with 2 workers) — the design the
service started from. Used for the side-by-side ratio in docs/performance.md.

    python -m loadtests.plain_server --port 3500
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from api.app import create_app
from api.core import ServiceCore
from features.families import ALL_FAMILIES
from monitoring.metrics import Metrics
from runners.core import RunnerCore
from runners.local import LocalRunnerClient
from settings import load_settings


def build_app():
    settings = load_settings(
        enable_response_caching=False,
        enable_feature_caching=False,
        enable_prediction_caching=False,
        prometheus_multiproc_dir=None,
    )
    runners = {}
    for family in ALL_FAMILIES:
        core = RunnerCore(family, None, settings.models.cache_max_mb, Metrics())
        core.warm_up()
        runners[family] = LocalRunnerClient(core)
    service = ServiceCore(settings, runners, root_pid=os.getpid())
    app = create_app(lambda: service, settings.serving.max_request_bytes)
    app.get("/readyz")(lambda: {"ready": True})  # models are loaded and warmed up above
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3500)
    args = parser.parse_args()
    uvicorn.run(build_app(), host="127.0.0.1", port=args.port, workers=1, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
