"""The error answers of BentoML's typed endpoints (``/predict_mechanical``, ..., api/transport/bentoml_api.py)
in /api/v1's JSON error body (api/transport/errors.py), with the request's id.

BentoML answers a refusal in shapes of its own, none with the request's id: its validation of the
body ``{"error": "2 validation error for ...", "detail": [pydantic's errors]}``, a raised exception's
4xx ``[{"error": message}]``, any 5xx one fixed sentence (a 503 loses its reason and Retry-After),
and its router's 405 plain text. It offers no hook for its error bodies, so ``TypedErrors``, the
ASGI middleware in front of those endpoints (inside ``RequestIdentity``, service.py), replaces the
body of every 4xx/5xx answer:

- a refusal of the prediction flow (``keep``) by the /api/v1 route's own answer to the same request:
  its status, body and Retry-After;
- BentoML's own refusals by the body /api/v1 gives for the same fault, BentoML's status kept: a body
  that does not fit the model is 400 here (what BentoML's clients raise as InvalidArgument), 422 on
  /api/v1.

A successful answer passes untouched (one status comparison); nothing is added to /api/v1/*, which
does not pass through BentoML's middleware (monitoring/traffic.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.transport.errors import ApiError, InvalidInput, MalformedBody, internal_error_body, with_request_id

_KINDS = {404: "not_found", 405: "method_not_allowed", 415: "unsupported_media_type"}
_CONTENT = (b"content-length", b"content-type")
_NOT_AN_OBJECT = ("model_type", "model_attributes_type", "missing")  # pydantic's types for the body itself


@dataclass
class _Refusal:
    """The flow's refusal of the request being answered (its /api/v1 error response), if any."""

    response: Response | None = None


# set by TypedErrors for the request it wraps; a mutable holder, so the endpoint's write is seen
# by the middleware whatever context BentoML runs the endpoint in
_REFUSAL: ContextVar[_Refusal | None] = ContextVar("armor_typed_refusal", default=None)


def keep(response: Response) -> None:
    """Have TypedErrors answer the current request with ``response`` (an /api/v1 error answer) in
    place of the body BentoML makes of the exception the endpoint raises next; outside TypedErrors
    (a direct call of the endpoint's function), nothing."""
    refusal = _REFUSAL.get()
    if refusal is not None:
        refusal.response = response


class InvalidArgument(InvalidInput):
    """A body that does not fit the endpoint's model: /api/v1's ``validation_error`` body with
    BentoML's status, 400 (its clients raise InvalidArgument; their callers catch that)."""

    status = HTTPStatus.BAD_REQUEST


def typed_routes(service: Any) -> dict[str, type[BaseModel]]:
    """The route of each typed endpoint of a bentoml Service and the model its body is checked
    against (BentoML's IO descriptor, a subclass of the endpoint's pydantic model)."""
    return {api.route: api.input_spec for api in service.apis.values()}


def own_error_body(status: int, body: bytes, model: type[BaseModel]) -> dict[str, Any]:
    """BentoML's error answer (``status``, ``body``) to a request for ``model`` as /api/v1's body."""
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        return internal_error_body()  # BentoML's sentence says the same: see the log
    message, detail = _said(body)
    if status == HTTPStatus.BAD_REQUEST and isinstance(detail, list):
        return _refused_body(detail, model).body()
    return with_request_id({"error": {"status": status, "type": _KINDS.get(status, "http_error"), "message": message}})


def _said(body: bytes) -> tuple[str, Any]:
    """The message and detail of BentoML's error body: a JSON object, a list of one, or text."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace"), None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if not isinstance(parsed, dict):
        return str(parsed), None
    return str(parsed.get("error", "")), parsed.get("detail")


def _refused_body(errors: list[Any], model: type[BaseModel]) -> ApiError:
    """What /api/v1 says of pydantic's ``errors`` (as BentoML writes them) of a body for ``model``."""
    shown: list[dict[str, Any]] = [
        {"loc": e.get("loc") or (), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in errors
        if isinstance(e, dict)
    ]
    for error in shown:
        if error["type"] == "json_invalid":
            return MalformedBody.invalid_json(error["msg"].removeprefix("Invalid JSON: "))
        if not error["loc"] and error["type"] in _NOT_AN_OBJECT:
            return MalformedBody.not_an_object()
    return InvalidArgument.from_errors(shown, model)


class TypedErrors:
    """ASGI middleware: the error answers of the typed endpoints ``routes`` (path: model of the
    body) as /api/v1's error body with the request's id (see the module's docstring)."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, type[BaseModel]]):
        self.app, self.routes = app, dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if model is None:
            return await self.app(scope, receive, send)
        refusal = _Refusal()
        token = _REFUSAL.set(refusal)
        try:
            await self.app(scope, receive, _rewriting(send, refusal, model))
        finally:
            _REFUSAL.reset(token)


def _rewriting(send: Send, refusal: _Refusal, model: type[BaseModel]) -> Send:
    """``send`` with an error answer held until its last byte, then replaced (``_replacement``)."""
    held: list[Message] = []

    async def rewritten(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= HTTPStatus.BAD_REQUEST:
            held.append(message)
        elif not held:
            await send(message)
        elif message["type"] == "http.response.body":
            held.append(message)
            if not message.get("more_body", False):
                body = b"".join(part.get("body", b"") for part in held[1:])
                for replaced in _replacement(held[0], body, refusal.response, model):
                    await send(replaced)

    return rewritten


def _replacement(start: Message, body: bytes, refused: Response | None, model: type[BaseModel]) -> list[Message]:
    """The answer in place of BentoML's error answer (``start``, ``body``): the flow's ``refused``
    response when there is one, else BentoML's error in /api/v1's body; BentoML's other headers kept."""
    if refused is not None:
        status, content, headers = refused.status_code, bytes(refused.body), list(refused.raw_headers)
    else:
        status, content = start["status"], orjson.dumps(own_error_body(start["status"], body, model))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    kept = [(k, v) for k, v in start.get("headers", ()) if k.lower() not in _CONTENT]
    return [
        {"type": "http.response.start", "status": status, "headers": [*kept, *headers]},
        {"type": "http.response.body", "body": content},
    ]
