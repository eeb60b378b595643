"""The one hook in front of BentoML's HTTP stack: its traffic middleware, replaced by a subclass
that does four things, each below: (1) labels the traffic series by route, not by whatever path
a client sends; (2) records them through the service's tally, once a second; (3) sends
``/api/v1/*`` straight to the service's app (``Shortcut``); (4) gives a path nobody routes the
service's JSON 404 body instead of Starlette's plain-text "Not Found".

(1) BentoML's ``RunnerTrafficMetricsMiddleware`` (the outermost middleware of every service) labels
its request counters, histograms and gauges with the raw request path. Anyone could add about
20 series per made-up path: 5,000 requests for ``/x<random>`` made /metrics 20 MB, a scrape take
5 s and an API worker grow 148 -> 366 MB (issue 14, item 3). It runs before any middleware a
service can add, so the label cannot be fixed from inside; ``install`` swaps BentoML's class for a
subclass that labels every path the service does not route as ``UNROUTED`` and hands the inner
app the request untouched. BentoML builds its middleware list when a worker starts, after the
service module is imported: installing at import time is early enough.

(2) The subclass also records an HTTP request's series more cheaply than BentoML's ``__call__``, which
looks each of them up by five keyword labels on every request (~4 % of an API worker's time on
the cold path, issue 12's profile). Its endpoints are bounded (the routed paths and
``UNROUTED``), so the label children are looked up once per endpoint (and status) and kept; the
series, their labels and what is recorded are BentoML's, written through the service's tally
once a second (monitoring/tally.py) instead of on every request. Websockets and ``/metrics`` keep
BentoML's own code.

(3) ``Shortcut``: see its docstring.

(4) A path outside the known routes still goes to BentoML's app (its static files for the
Swagger UI are not in the route list); when that app answers 404 (its router's plain text), the
answer is replaced by ``not_found`` (the service's JSON error body, given by service.py). Paths
under the shortcut's prefix get the service app's own JSON 404.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from timeit import default_timer
from typing import Any

from bentoml._internal.context import server_context
from bentoml._internal.server.http import instruments

from monitoring.tally import Tally

UNROUTED = "/(unrouted)"
# BentoML's own routes (bentoml/_internal/server/base_app.py, http_app.py)
BENTOML_PATHS = frozenset({"/", "/docs.json", "/metrics", "/livez", "/readyz", "/healthz", "/schema.json"})
_ORIGINAL_PATH = "armor.original_path"

Scope = dict[str, Any]


@dataclass(frozen=True)
class Shortcut:
    """Requests whose path starts with ``prefix`` go from this middleware, the outermost but one,
    straight to ``app`` (the service's own ASGI app), past BentoML's inner middleware and router:
    its request context (which the service does not read), OpenTelemetry's check (every URL is
    excluded, settings.py), its switched-off access log and its timeout task (``app`` keeps the
    deadline, api/transport/deadline.py), then Starlette's router and the mount that lead to ``app`` anyway.
    Those layers cost ~28 µs a request in one loop on an idle core (issue 12)."""

    prefix: str | tuple[str, ...]  # one prefix, or several (``str.startswith`` takes either)
    app: Callable[[Scope, Any, Any], Awaitable[None]]


def json_not_found(send: Any, body_of: Callable[[], bytes]) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """``send`` with a 404 answer replaced by ``body_of()`` (JSON, made while the request's id is
    set; its X-Request-ID header is kept); any other answer passes untouched."""
    replacing = False

    async def replaced(message: dict[str, Any]) -> None:
        nonlocal replacing
        if message["type"] == "http.response.start" and message["status"] == 404:
            replacing, body = True, body_of()
            kept = [(k, v) for k, v in message.get("headers", ()) if k == b"x-request-id"]
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *kept]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif not replacing:
            await send(message)

    return replaced


def endpoint_label(path: str, known: frozenset[str], mounts: tuple[str, ...]) -> str:
    """A routed path is its own label; a path under a mount (the web page's files under /ui/) is
    the mount's; any other is ``UNROUTED``."""
    if path in known:
        return path
    return next((mount for mount in mounts if path.startswith(mount)), UNROUTED)


def _bounded(
    base: type[Any],
    known: frozenset[str],
    tally_of: Callable[[], Tally],
    shortcut: Shortcut | None = None,
    not_found: Callable[[], bytes] | None = None,
    mounts: tuple[str, ...] = (),
) -> type[Any]:
    class BoundedPathTrafficMetrics(base):  # type: ignore[misc, valid-type]
        def __init__(self, app: Any, **options: Any) -> None:
            super().__init__(self._restore, **options)
            self._inner = app

        async def _restore(self, scope: Scope, receive: Any, send: Any) -> None:
            await self._inner(self._restored(scope), receive, send)

        @staticmethod
        def _restored(scope: Scope) -> Scope:
            original = scope.get(_ORIGINAL_PATH)
            if original is None:
                return scope
            return {k: v for k, v in scope.items() if k != _ORIGINAL_PATH} | {"path": original}

        def _inner_app(self, scope: Scope) -> Callable[[Scope, Any, Any], Awaitable[None]]:
            """The shortcut's app for its paths, else BentoML's inner middleware."""
            path: str = scope.get(_ORIGINAL_PATH) or scope["path"]
            return shortcut.app if shortcut is not None and path.startswith(shortcut.prefix) else self._inner

        async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
            if scope["type"] in ("http", "websocket") and scope["path"] not in known:
                scope = {**scope, _ORIGINAL_PATH: scope["path"], "path": endpoint_label(scope["path"], known, mounts)}
            if scope["type"] != "http" or scope["path"] == "/metrics":
                await super().__call__(scope, receive, send)
                return
            if not self._is_setup:
                self._setup()
            series, tally = self._endpoint_series(scope["path"]), self._tally()
            if series.stamp is not None:
                tally.set(series.stamp, time.time())  # Gauge.set_to_current_time
            started, status = default_timer(), 0

            async def counted_send(message: dict[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                elif message["type"] == "http.response.body" and not message.get("more_body", False):
                    total, duration = series.finished(status)
                    tally.inc(total)
                    tally.observe(duration, max(default_timer() - started, 0))
                await send(message)

            inner = self._inner_app(scope)
            answer: Callable[[dict[str, Any]], Awaitable[None]] = counted_send
            if not_found is not None and scope["path"] == UNROUTED and inner is self._inner:
                answer = json_not_found(counted_send, not_found)
            tally.inc(series.in_progress)  # Gauge.track_inprogress
            try:
                await inner(self._restored(scope), receive, answer)
            finally:
                tally.inc(series.in_progress, -1)

        def _tally(self) -> Tally:
            """The service's tally, found on the first request (the service exists by then)."""
            found: Tally | None = self.__dict__.get("_armor_tally")
            if found is None:
                found = self.__dict__["_armor_tally"] = tally_of()
            return found

        def _endpoint_series(self, endpoint: str) -> _EndpointSeries:
            cache: dict[str, _EndpointSeries] = self.__dict__.setdefault("_armor_series", {})
            if endpoint not in cache:
                cache[endpoint] = _EndpointSeries(self, endpoint)
            return cache[endpoint]

    return BoundedPathTrafficMetrics


class _EndpointSeries:
    """BentoML's HTTP traffic series of one endpoint, their label children looked up once (what
    RunnerTrafficMetricsMiddleware.__call__ records for an HTTP request)."""

    def __init__(self, middleware: Any, endpoint: str):
        labels = {
            "service_name": server_context.bento_name,
            "service_version": server_context.bento_version,
            "runner_name": server_context.service_name,
        }
        skipped = endpoint.startswith(tuple(middleware.skip_paths))
        self.stamp = None if skipped else middleware.metrics_last_request_timestamp.labels(**labels)
        self.in_progress = middleware.metrics_request_in_progress.labels(endpoint=endpoint, **labels)
        self._total: Callable[..., Any] = middleware.metrics_request_total.labels
        self._duration: Callable[..., Any] = middleware.metrics_request_duration.labels
        self._labels = {"endpoint": endpoint, **labels}
        self._finished: dict[int, tuple[Any, Any]] = {}

    def finished(self, status: int) -> tuple[Any, Any]:
        """The request counter and the duration histogram of a response with ``status``."""
        if status not in self._finished:
            labels = {**self._labels, "http_response_code": status}
            self._finished[status] = (self._total(**labels), self._duration(**labels))
        return self._finished[status]


def install(
    routed_paths: Iterable[str],
    tally_of: Callable[[], Tally],
    shortcut: Shortcut | None = None,
    not_found: Callable[[], bytes] | None = None,
    mounts: tuple[str, ...] = (),
) -> None:
    """Label BentoML's traffic metrics by ``routed_paths`` (plus BentoML's own routes; a path under
    one of ``mounts``, prefixes ending in /, by the mount), record an
    HTTP request's series through the tally ``tally_of`` returns (the service's, written once a
    second, monitoring/tally.py), send the requests of ``shortcut`` straight to its app, and
    answer BentoML's 404s with ``not_found``; idempotent."""
    current = instruments.RunnerTrafficMetricsMiddleware
    original = getattr(current, "_armor_original", current)
    bounded = _bounded(original, frozenset(routed_paths) | BENTOML_PATHS, tally_of, shortcut, not_found, mounts)
    bounded._armor_original = original
    instruments.RunnerTrafficMetricsMiddleware = bounded  # type: ignore[misc]
