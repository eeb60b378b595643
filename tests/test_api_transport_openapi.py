"""The published OpenAPI document: BentoML's, declared 3.1.0 and valid for it."""

from __future__ import annotations

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
