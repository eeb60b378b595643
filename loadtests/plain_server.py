"""The baseline for the load tests: the same models and routes in plain uvicorn processes, with
no runner hop and no caches (loadtests/side_by_side.py runs it with 2 workers) — the design the
service started from. Used for the side-by-side ratio in docs/performance.md.

    python -m loadtests.plain_server --port 3500 [--workers 2] [--http service|stock]

``--http service`` (the default; ``PLAIN_SERVER_HTTP`` in the environment) serves with the
service's own HTTP protocol class (api/transport/header_timeout.py: the request-head deadline and one write
per response), so the side by side compares the architectures, not two HTTP layers; ``stock`` is
uvicorn's.
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from fastapi import FastAPI


def build_app() -> FastAPI:
    """The app of one worker (the factory uvicorn calls in each worker process; the imports are
    here so the supervising process stays as small as plain ``uvicorn``)."""
    from api.app import create_app
    from api.core import ServiceCore
    from features.families import ALL_FAMILIES
    from monitoring.metrics import Metrics
    from runners.core import RunnerCore
    from runners.local import LocalRunnerClient
    from settings import load_settings

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


HTTP = {"service": "api.transport.header_timeout:HeaderDeadlineProtocol", "stock": "auto"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=3500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--http", choices=sorted(HTTP), default=os.environ.get("PLAIN_SERVER_HTTP", "service"))
    args = parser.parse_args()
    uvicorn.run(
        "loadtests.plain_server:build_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        http=HTTP[args.http],
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
