"""ArmorClient: the service over HTTP for notebooks and scripts (httpx, synchronous; its async twin
is client/aio.py), answers as typed objects (client/results.py).

Every call retries a 503 (runner unavailable or overloaded) after its Retry-After, or with an
exponential back-off, and a connection that cannot be made with the same back-off; after
``retries`` attempts it raises ServiceUnreachable or ServiceError. A batch is streamed: rows come
back (NDJSON or CSV) while the service still works on the later ones.
"""

from __future__ import annotations

import gzip
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from client.results import BatchRow, HardnessPrediction, Prediction

FAMILIES = ("mechanical", "ballistic", "hardness")
BATCH_FAMILIES = ("mechanical", "ballistic")
DEFAULT_URL = "http://127.0.0.1:3000"
_CONNECTION_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


class ServiceUnreachable(Exception):
    """No connection could be made to the service (after the retries)."""


class ServiceError(Exception):
    """The service answered with an error status; ``body`` is its JSON error body when it sent one."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None):
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.body = status, message, body or {}


def _error(response: httpx.Response) -> ServiceError:
    try:
        body = response.json()
        return ServiceError(response.status_code, str(body["error"]["message"]), body)
    except (ValueError, KeyError, TypeError):
        return ServiceError(response.status_code, response.text[:200] or response.reason_phrase)


def retry_delay(backoff_s: float, attempt: int, retry_after: str | None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential back-off, or the service's
    Retry-After when longer."""
    delay = float(backoff_s * 2**attempt)
    if retry_after is not None and retry_after.strip().isdigit():
        delay = max(delay, float(retry_after))
    return delay


def material_family(family: str) -> str:
    if family not in BATCH_FAMILIES:
        raise ValueError(f"family must be one of {BATCH_FAMILIES} (hardness: use .hardness(formula, load_n))")
    return family


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class ArmorClient:
    """``predict`` one material, ``predict_many`` any number (sent in batches), ``status``."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        timeout_s: float = 300.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """``api_key``: sent as X-API-Key with every request (the service's API_KEYS)."""
        self.url, self.retries, self.backoff_s, self._sleep = url.rstrip("/"), retries, backoff_s, sleep
        headers = {"x-api-key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, transport=transport, headers=headers)

    def __enter__(self) -> ArmorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        self._sleep(retry_delay(self.backoff_s, attempt, retry_after))

    @contextmanager
    def _request(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response with a success status. A 503, or a connection that could not be
        made, is retried; a failure after the answer started is the caller's."""
        for attempt in itertools.count():
            try:
                response = self._http.send(self._http.build_request(method, path, **kwargs), stream=True)
            except _CONNECTION_ERRORS as exc:
                if attempt >= self.retries:
                    raise ServiceUnreachable(f"cannot reach the service at {self.url}: {exc}") from None
                self._wait(attempt, None)
                continue
            try:
                if response.status_code == 503 and attempt < self.retries:
                    response.read()
                elif response.status_code >= 400:
                    response.read()
                    raise _error(response)
                else:
                    yield response
                    return
            finally:
                response.close()
            self._wait(attempt, response.headers.get("retry-after"))

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with self._request(method, path, **kwargs) as response:
            body: dict[str, Any] = orjson.loads(response.read())
            return body

    def log_pages(
        self, filters: dict[str, Any], *, as_csv: bool = False, admin_token: str | None = None
    ) -> Iterator[tuple[str, str | None]]:
        """Pages of the prediction log (GET /api/v1/predictions), newest first, from ``filters``
        (since, until, family, model_tag, material_key, warning, limit): each page's body (JSON, or
        CSV with its header row) and the cursor of the next (None: the last)."""
        headers = {"authorization": f"Bearer {admin_token}"} if admin_token else {}
        params = {k: v for k, v in filters.items() if v is not None} | {"format": "csv" if as_csv else "json"}
        while True:
            with self._request("GET", "/api/v1/predictions", params=params, headers=headers) as response:
                body, cursor = response.read().decode(), response.headers.get("x-next-cursor")
            yield body, cursor
            if cursor is None:
                return
            params["cursor"] = cursor

    def status(self) -> dict[str, Any]:
        """Uptime, resources, versions and loaded models (a summary without the admin token)."""
        return self._json("GET", "/api/v1/status")

    def predict(self, family: str, material: dict[str, Any], **flags: Any) -> Prediction:
        """One material (``family``: mechanical or ballistic); ``flags``: include_uncertainty,
        include_feature_importance, model_version."""
        body = self._json("POST", f"/api/v1/predict/{material_family(family)}", json={**material, **flags})
        return Prediction.from_json(body)

    def hardness(self, formula: str, load_n: float | list[float] = 9.8, **flags: Any) -> HardnessPrediction:
        """The Vickers hardness of ``formula`` at each load (N)."""
        body = self._json("POST", "/api/v1/predict/hardness", json={"formula": formula, "load_n": load_n, **flags})
        return HardnessPrediction.from_json(body)

    def batch_lines(
        self, family: str, content: bytes, content_type: str, accept: str, params: dict[str, Any] | None = None
    ) -> Iterator[bytes]:
        """The lines of one /batch answer as they arrive (the body sent gzip-compressed)."""
        headers = {"content-type": content_type, "content-encoding": "gzip", "accept": accept}
        path = f"/api/v1/predict/{family}/batch"
        with self._request("POST", path, content=gzip.compress(content, 5), headers=headers, params=params) as answer:
            for line in answer.iter_lines():
                yield line.encode()

    def design_events(self, spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST /api/v1/design streamed: ``{"progress": ...}`` per generation as the search runs,
        then the answer (front, closest, suggestions, summary). A failure after the search started
        arrives as its last line and is raised as ServiceError."""
        headers = {"accept": "application/x-ndjson"}
        with self._request("POST", "/api/v1/design", content=orjson.dumps(spec), headers=headers) as answer:
            for line in answer.iter_lines():
                event: dict[str, Any] = orjson.loads(line)
                if "error" in event:
                    error = event["error"]
                    raise ServiceError(int(error["status"]), str(error["message"]), event)
                yield event

    def predict_many(
        self, family: str, materials: Iterable[dict[str, Any]], *, batch_rows: int = 1000, **options: Any
    ) -> Iterator[BatchRow]:
        """Each material's values or error (``row`` counts from 0 over all of them), in order, sent
        ``batch_rows`` at a time. ``options``: the flags, and rank_by / where / top (screening
        applies to each batch: give batch_rows at least the number of materials to screen them all)."""
        offset = 0
        for batch in chunked(materials, batch_rows):
            body = orjson.dumps({"materials": batch, **options})
            lines = self.batch_lines(material_family(family), body, "application/json", "application/x-ndjson")
            for line in lines:
                item: dict[str, Any] = orjson.loads(line)
                if "summary" not in item:
                    yield BatchRow.from_json(item | {"row": item["row"] + offset})
            offset += len(batch)
