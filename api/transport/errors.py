"""Errors that carry their HTTP status, and the JSON body every 4xx/5xx uses.

Body: {"error": {"status": 422, "type": "validation_error", "message": "...",
                 "details": [{"field": "composition.SiC", "message": "..."}]},
       "request_id": "..."}
``request_id`` is the request's (monitoring/request_id.py), absent outside a request.
A 5xx never carries a traceback or the exception text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ValidationError

from monitoring.logs import REQUEST_ID


def with_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the id of the request being served, when there is one."""
    request_id = REQUEST_ID.get()
    return body if request_id is None else body | {"request_id": request_id}


class ApiError(Exception):
    status = HTTPStatus.BAD_REQUEST
    kind = "bad_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message, self.details, self.extra = message, details or [], extra or {}

    def body(self) -> dict[str, Any]:
        """The response body: the error and the request's id."""
        return with_request_id(self.entry())

    def entry(self) -> dict[str, Any]:
        """``{"error": ...}`` alone (a row's error inside a batch answer)."""
        error = {"status": int(self.status), "type": self.kind, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error | self.extra}


class MalformedBody(ApiError):
    kind = "malformed_body"

    @classmethod
    def invalid_json(cls, reason: str) -> MalformedBody:
        """A body the JSON parser refused, with its reason (may be empty)."""
        detail = f" ({reason})" if reason else ""
        return cls(f"request body is not valid JSON{detail}; expected a JSON object like the documented example")

    @classmethod
    def not_an_object(cls) -> MalformedBody:
        return cls("request body must be a non-empty JSON object like the documented example")


class Unauthorized(ApiError):
    status = HTTPStatus.UNAUTHORIZED
    kind = "unauthorized"


class RateLimited(ApiError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    kind = "rate_limited"


class RequestTimeout(ApiError):
    status = HTTPStatus.REQUEST_TIMEOUT
    kind = "request_timeout"


class GatewayTimeout(ApiError):
    status = HTTPStatus.GATEWAY_TIMEOUT
    kind = "timeout"


class HeadTooLarge(ApiError):
    status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    kind = "headers_too_large"


class BodyTooLarge(ApiError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    kind = "body_too_large"


class InvalidInput(ApiError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    kind = "validation_error"

    @classmethod
    def from_validation(cls, exc: ValidationError, model: type[BaseModel]) -> InvalidInput:
        return cls.from_errors(exc.errors(), model)

    @classmethod
    def from_errors(cls, errors: Iterable[Mapping[str, Any]], model: type[BaseModel]) -> InvalidInput:
        """Pydantic's errors (``ValidationError.errors()`` or their JSON: ``loc``, ``msg``, ``type``)
        of a body of ``model``, their locations relative to the body."""
        details = [{"field": _path(e["loc"]), "message": _message(e, model)} for e in errors]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return cls(f"invalid request: {summary}", details)


class NotFound(ApiError):
    status = HTTPStatus.NOT_FOUND
    kind = "not_found"


class UnknownModelVersion(ApiError):
    """A model_version the store does not hold; the stored versions are listed (message and
    ``available``) unless ``redacted`` for a caller without the admin token."""

    status = HTTPStatus.NOT_FOUND
    kind = "unknown_model_version"

    def __init__(self, reason: str, family: str, available: list[str]):
        super().__init__(f"{reason}; available {family} versions: {available}", extra={"available": available})
        self.reason = reason

    def redacted(self) -> ApiError:
        return _UnlistedModelVersion(
            f"{self.reason}; the stored versions are listed by GET /api/v1/models with the admin token"
        )


class _UnlistedModelVersion(ApiError):
    status = UnknownModelVersion.status
    kind = UnknownModelVersion.kind


def for_caller(error: Exception, admin: bool) -> Exception:
    """What a caller may be told of ``error``: without the admin token, no stored versions."""
    return error.redacted() if isinstance(error, UnknownModelVersion) and not admin else error


class ServiceUnavailable(ApiError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    kind = "unavailable"


def _path(loc: Iterable[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "(body)"


def known_fields(model: type[BaseModel], loc: tuple[int | str, ...] | list[int | str]) -> list[str]:
    """Field names of the (nested) model that holds the field at ``loc``."""
    for part in loc[:-1]:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _message(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    message: str = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"unknown field; known fields: {known_fields(model, error['loc'])}"
    if error["type"] == "missing":
        return "field required"
    return message


def internal_error_body() -> dict[str, Any]:
    return with_request_id(
        {"error": {"status": 500, "type": "internal_error", "message": "internal error; see the service log"}}
    )
