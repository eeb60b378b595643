"""The published OpenAPI document (``/docs.json``): BentoML's, which merges the app's routes with its own
endpoints, made valid for the version it declares.

BentoML labels the document 3.0.2, but the app's part comes from FastAPI, which writes OpenAPI 3.1
(JSON Schema 2020-12: ``type: null`` in ``anyOf``, ``examples``, unknown keywords such as ``unit``).
Relabelled 3.1.0 it is nearly valid; what remains is BentoML's own flattening of an optional field,
which drops its ``null`` (``list | None`` becomes ``type: array`` with ``default: null``). So the
document declares 3.1.0 and every schema whose default is null admits null. Its ``info`` is the
service's (BentoML's default description links badges on third-party hosts).
"""

from __future__ import annotations

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
    return document


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
