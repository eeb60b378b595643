"""The published OpenAPI document (``/docs.json``): BentoML's, which merges the app's routes with its own
endpoints, made valid for the version it declares.

BentoML labels the document 3.0.2, but the app's part comes from FastAPI, which writes OpenAPI 3.1
(JSON Schema 2020-12: ``type: null`` in ``anyOf``, ``examples``, unknown keywords such as ``unit``).
Relabelled 3.1.0 it is nearly valid; what remains is BentoML's own flattening of an optional field,
which drops its ``null`` (``list | None`` becomes ``type: array`` with ``default: null``). So the
document declares 3.1.0 and every schema whose default is null admits null. Its ``info`` is the
service's (BentoML's default description links badges on third-party hosts).

BentoML documents its typed endpoints' errors with schemas of its own (``InvalidArgument``, ...: an
``error`` string); their bodies are the service's ``ErrorBody`` (api/transport/bentoml_errors.py),
and a runner that cannot answer is a 503 with Retry-After: the document says so.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

OPENAPI_VERSION = "3.1.0"


def published_document(bentoml_document: dict[str, Any], version: str, description: str) -> dict[str, Any]:
    """``bentoml_document`` (``Service.openapi_spec.asdict()``) as a valid OpenAPI 3.1 document."""
    # a deep copy with string keys (BentoML keys responses by int status)
    document: dict[str, Any] = orjson.loads(orjson.dumps(bentoml_document, option=orjson.OPT_NON_STR_KEYS))
    document["openapi"] = OPENAPI_VERSION
    document["info"] = {"title": document.get("info", {}).get("title", "ceramic_armor"), "version": version}
    document["info"]["description"] = description
    _admit_null_defaults(document)
    _typed_errors_as_error_body(document)
    return document


_BENTOML_ERRORS = frozenset(
    f"#/components/schemas/{name}" for name in ("InvalidArgument", "NotFound", "InternalServerError")
)
_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_UNAVAILABLE = {
    "description": "the prediction runner is unavailable or overloaded",
    "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
    "content": _ERROR_BODY,
}


def _typed_errors_as_error_body(document: dict[str, Any]) -> None:
    """Every response documented with one of BentoML's error schemas gets ``ErrorBody``, and its
    operation a 503; nothing when the document has no ErrorBody (no app routes merged in)."""
    if "ErrorBody" not in document.get("components", {}).get("schemas", {}):
        return
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            typed = [r for r in responses.values() if _schema_ref(r) in _BENTOML_ERRORS]
            for response in typed:
                response["content"] = copy.deepcopy(_ERROR_BODY)
            if typed:
                responses.setdefault("503", copy.deepcopy(_UNAVAILABLE))


def _schema_ref(response: Any) -> str | None:
    schema = (
        response.get("content", {}).get("application/json", {}).get("schema", {}) if isinstance(response, dict) else {}
    )
    ref: str | None = schema.get("$ref") if isinstance(schema, dict) else None
    return ref


def _admit_null_defaults(node: Any) -> None:
    """Every schema with ``default: null`` and a single ``type`` also admits null (recursively)."""
    if isinstance(node, dict):
        if "default" in node and node["default"] is None and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for value in node.values():
            _admit_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _admit_null_defaults(value)
