"""AsyncArmorClient: ArmorClient's twin for asyncio code (httpx.AsyncClient): the same calls,
retries and typed answers, awaited. Many predictions at once: ``asyncio.gather`` over ``predict``
(the service batches concurrent requests), or ``predict_many`` for a list."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import orjson

from client.core import (
    _CONNECTION_ERRORS,
    DEFAULT_URL,
    ServiceUnreachable,
    _error,
    chunked,
    material_family,
    retry_delay,
)
from client.results import BatchRow, HardnessPrediction, Prediction


class AsyncArmorClient:
    """``await predict(...)``, ``await hardness(...)``, ``async for row in predict_many(...)``, ``await status()``."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        timeout_s: float = 300.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.url, self.retries, self.backoff_s = url.rstrip("/"), retries, backoff_s
        headers = {"x-api-key": api_key} if api_key else {}
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s, transport=transport, headers=headers)

    async def __aenter__(self) -> AsyncArmorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> bytes:
        """The body of a success answer; a 503 or a refused connection is retried (as ArmorClient)."""
        for attempt in itertools.count():
            try:
                response = await self._http.request(method, path, **kwargs)
            except _CONNECTION_ERRORS as exc:
                if attempt >= self.retries:
                    raise ServiceUnreachable(f"cannot reach the service at {self.url}: {exc}") from None
                await asyncio.sleep(retry_delay(self.backoff_s, attempt, None))
                continue
            if response.status_code == 503 and attempt < self.retries:
                await asyncio.sleep(retry_delay(self.backoff_s, attempt, response.headers.get("retry-after")))
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response.content
        raise AssertionError("unreachable")  # itertools.count never ends

    async def status(self) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(await self._send("GET", "/api/v1/status"))
        return body

    async def predict(self, family: str, material: dict[str, Any], **flags: Any) -> Prediction:
        path = f"/api/v1/predict/{material_family(family)}"
        return Prediction.from_json(orjson.loads(await self._send("POST", path, json={**material, **flags})))

    async def hardness(self, formula: str, load_n: float | list[float] = 9.8, **flags: Any) -> HardnessPrediction:
        body = {"formula": formula, "load_n": load_n, **flags}
        return HardnessPrediction.from_json(
            orjson.loads(await self._send("POST", "/api/v1/predict/hardness", json=body))
        )

    async def predict_many(
        self, family: str, materials: Iterable[dict[str, Any]], *, batch_rows: int = 1000, **options: Any
    ) -> AsyncIterator[BatchRow]:
        """As ArmorClient.predict_many: every row in order, ``batch_rows`` materials a request."""
        path, offset = f"/api/v1/predict/{material_family(family)}/batch", 0
        for batch in chunked(materials, batch_rows):
            content = orjson.dumps({"materials": batch, **options})
            headers = {"content-type": "application/json", "accept": "application/x-ndjson"}
            for line in (await self._send("POST", path, content=content, headers=headers)).splitlines():
                item: dict[str, Any] = orjson.loads(line)
                if "summary" not in item:
                    yield BatchRow.from_json(item | {"row": item["row"] + offset})
            offset += len(batch)
