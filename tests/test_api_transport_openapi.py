"""The published OpenAPI document: BentoML's, declared 3.1.0 and valid for it."""

from __future__ import annotations

import copy

from openapi_spec_validator import OpenAPIV31SpecValidator

from api.transport.openapi import OPENAPI_VERSION, published_document

# what BentoML writes for an optional list field of its own endpoints: the null is gone
_FLATTENED = {"type": "array", "items": {"type": "number"}, "default": None, "title": "Feature Importance"}
BENTOML_LIKE = {
    "openapi": "3.0.2",
    "info": {"title": "ceramic_armor", "version": "None", "description": "[![badge](https://img.shields.io/x)]"},
    "paths": {
        "/predict": {
            "post": {
                "responses": {
                    200: {
                        "description": "ok",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}},
                    }
                }
            }
        }
    },
    "components": {
        "schemas": {
            "Answer": {
                "type": "object",
                "properties": {"feature_importance": _FLATTENED, "value": {"type": "number", "unit": "GPa"}},
            }
        }
    },
}


def test_the_document_declares_the_version_it_validates_against():
    document = published_document(BENTOML_LIKE, "0.1.0", "what the service does")
    assert document["openapi"] == OPENAPI_VERSION == "3.1.0"
    assert list(OpenAPIV31SpecValidator(document).iter_errors()) == []


def test_a_null_default_is_admitted_and_the_source_is_left_alone():
    document = published_document(BENTOML_LIKE, "0.1.0", "what the service does")
    field = document["components"]["schemas"]["Answer"]["properties"]["feature_importance"]
    assert field["type"] == ["array", "null"]
    assert _FLATTENED["type"] == "array"


def test_the_flattened_field_fails_without_the_mend():
    """The check above can fail: BentoML's flattened field, relabelled only, does not validate."""
    relabelled = published_document(BENTOML_LIKE, "0.1.0", "x")
    relabelled["components"]["schemas"]["Answer"]["properties"]["feature_importance"] = _FLATTENED
    assert list(OpenAPIV31SpecValidator(relabelled).iter_errors())


def test_info_is_the_services_without_third_party_links():
    document = published_document(BENTOML_LIKE, "0.1.0", "what the service does")
    assert document["info"] == {"title": "ceramic_armor", "version": "0.1.0", "description": "what the service does"}
    assert "200" in document["paths"]["/predict"]["post"]["responses"]


def test_the_typed_endpoints_errors_are_documented_as_the_error_body_with_a_503():
    """Their bodies are /api/v1's (api/transport/bentoml_errors.py), not BentoML's ``InvalidArgument``."""
    bentoml_error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/InvalidArgument"}}}}
    source = copy.deepcopy(BENTOML_LIKE)
    source["paths"]["/predict"]["post"]["responses"][400] = {"description": "Bad Request", **bentoml_error}
    source["components"]["schemas"] |= {
        "InvalidArgument": {"type": "object", "properties": {"error": {"type": "string"}}},
        "ErrorBody": {"type": "object", "properties": {"error": {"type": "object"}}},
    }
    responses = published_document(source, "0.1.0", "x")["paths"]["/predict"]["post"]["responses"]
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    assert responses["400"] == {"description": "Bad Request", "content": error_body}
    assert responses["503"]["content"] == error_body and "Retry-After" in responses["503"]["headers"]
    assert "503" not in published_document(BENTOML_LIKE, "0.1.0", "x")["paths"]["/predict"]["post"]["responses"]
    assert list(OpenAPIV31SpecValidator(published_document(source, "0.1.0", "x")).iter_errors()) == []
