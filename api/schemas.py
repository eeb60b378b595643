"""Request and response bodies of /api/v1/predict/{mechanical,ballistic,hardness}."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from features.catalogue import INDENTATION_LOAD
from features.formula import MAX_FORMULA_LENGTH
from features.schema import Material

EXAMPLE_REQUEST: dict[str, Any] = {
    "composition": {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1, "WC": 0.0, "TiC": 0.0},
    "processing": {
        "sintering_temperature": 1800,
        "pressure": 50,
        "grain_size": 10,
        "holding_time": 120,
        "heating_rate": 15,
        "atmosphere": "argon",
    },
    "microstructure": {
        "porosity": 0.02,
        "phase_distribution": "uniform",
        "interface_quality": "good",
        "pore_size": 1.0,
        "connectivity": 0.1,
    },
    "include_uncertainty": True,
    "include_feature_importance": True,
}


class PredictionRequest(Material):
    """A material plus what to return. ``armor`` is used by the ballistic family only."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [EXAMPLE_REQUEST]})
    include_uncertainty: bool = True
    include_feature_importance: bool = False
    model_version: str | None = Field(None, description="registry tag or version; default: the serving model")


Quality = Literal["excellent", "good", "fair", "poor"]


class PropertyPrediction(BaseModel):
    value: float
    unit: str
    confidence_interval: list[float] | None = Field(None, description="95 % prediction interval [low, high]")
    uncertainty: float | None = Field(None, description="relative half-width of the 95 % interval")
    prediction_quality: Quality | None = None


class FeatureImportance(BaseModel):
    name: str
    importance: float = Field(description="global permutation importance on held-out data, 0-1")
    category: str
    contribution: dict[str, float] = Field(description="per-target contribution to this prediction, target units")


class ModelInfo(BaseModel):
    name: str
    version: str
    trained_at: str
    training_samples: int
    metrics: dict[str, dict[str, float | int | str]]


class PredictionResponse(BaseModel):
    predictions: dict[str, PropertyPrediction]
    feature_importance: list[FeatureImportance] | None = None
    contribution_base: dict[str, float] | None = Field(
        None, description="base value per target; base + sum of contributions = predicted value"
    )
    model_info: ModelInfo
    warnings: list[str]
    request_id: str
    processing_time_ms: float
    cached: bool


MAX_LOADS = 20  # loads per hardness request: enough for an indentation-size-effect curve

HARDNESS_EXAMPLE: dict[str, Any] = {"formula": "B4C", "load_n": [0.98, 9.8, 49.0], "include_uncertainty": True}


def _load(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a load is a number of newtons, got {type(value).__name__}")
    if not (INDENTATION_LOAD.low <= value <= INDENTATION_LOAD.high) or value != value:
        raise ValueError(f"load {value!r} N outside the accepted {INDENTATION_LOAD.low:g}-{INDENTATION_LOAD.high:g} N")
    return float(value)


def _loads(value: Any) -> float | list[float]:
    if not isinstance(value, list):
        return _load(value)
    if not 1 <= len(value) <= MAX_LOADS:
        raise ValueError(f"give 1 to {MAX_LOADS} loads, got {len(value)}")
    return [_load(v) for v in value]


class HardnessRequest(BaseModel):
    """A chemical formula and one or several Vickers indentation loads."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [HARDNESS_EXAMPLE]})
    formula: str = Field(
        min_length=1,
        max_length=MAX_FORMULA_LENGTH,
        description="chemical formula, e.g. B4C, TiB2, Ti(C0.5N0.5), (HfZrTaNbTi)C5; element symbols with "
        "optional decimal amounts and nested brackets",
    )
    load_n: Annotated[float | list[float], BeforeValidator(_loads)] = Field(
        cast(float, INDENTATION_LOAD.default),
        description=f"indentation load(s), N ({INDENTATION_LOAD.low:g}-{INDENTATION_LOAD.high:g}); several loads "
        f"(at most {MAX_LOADS}) show the indentation size effect",
    )
    include_uncertainty: bool = True
    include_feature_importance: bool = False
    model_version: str | None = Field(None, description="registry tag or version; default: the serving model")

    def loads(self) -> list[float]:
        return [float(x) for x in (self.load_n if isinstance(self.load_n, list) else [self.load_n])]


class HardnessAtLoad(BaseModel):
    load_n: float
    vickers_hardness: PropertyPrediction


class HardnessResponse(BaseModel):
    formula: str
    composition: dict[str, float] = Field(description="element fractions (atomic), as the model saw them")
    predictions: list[HardnessAtLoad] = Field(description="one entry per requested load, in request order")
    load_dependence: dict[str, float] | None = Field(
        None,
        description="with several loads: the fitted power law H = a * load^n over the requested loads "
        "(n < 0: harder at low loads, the indentation size effect)",
    )
    feature_importance: list[FeatureImportance] | None = None
    contribution_base: dict[str, float] | None = None
    model_info: ModelInfo
    warnings: list[str]
    request_id: str
    processing_time_ms: float
    cached: bool


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    status: int
    type: str = Field(
        description="validation_error, malformed_body, body_too_large, unknown_model_version, "
        "unavailable, internal_error, not_found, method_not_allowed"
    )
    message: str
    details: list[ErrorDetail] | None = None
    available: list[str] | None = Field(None, description="with unknown_model_version: the stored versions")


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorInfo


def _error(description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description, "content": {"application/json": {"example": example}}}


PREDICTION_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error(
        "the body is not a JSON object",
        {"error": {"status": 400, "type": "malformed_body", "message": "request body is not valid JSON; ..."}},
    ),
    404: _error(
        "unknown model_version",
        {
            "error": {
                "status": 404,
                "type": "unknown_model_version",
                "message": "model version 'x' not found; ...",
                "available": ["armor_mechanical:abc"],
            }
        },
    ),
    413: _error(
        "body over MAX_REQUEST_BYTES",
        {"error": {"status": 413, "type": "body_too_large", "message": "request body over the limit of 65536 bytes"}},
    ),
    422: _error(
        "a field is invalid (named in details), or the backing is outside the ballistic models",
        {
            "error": {
                "status": 422,
                "type": "validation_error",
                "message": "invalid request: processing.grain_size: must be between 0.1 and 100 um, got 500",
                "details": [{"field": "processing.grain_size", "message": "must be between 0.1 and 100 um, got 500"}],
            }
        },
    ),
    503: _error(
        "a runner is unavailable or overloaded (Retry-After: 1)",
        {
            "error": {
                "status": 503,
                "type": "unavailable",
                "message": "the prediction runner is unavailable or overloaded; retry shortly",
            }
        },
    ),
    500: _error(
        "an unexpected failure (no internals)",
        {"error": {"status": 500, "type": "internal_error", "message": "internal error; see the service log"}},
    ),
}
