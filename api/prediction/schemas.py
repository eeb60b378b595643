"""Request and response bodies of /api/v1/predict/{mechanical,ballistic,hardness}."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from features.catalogue import INDENTATION_LOAD
from features.elements import complete_symbols
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


# One definition for every route (single, hardness, batch): surrounding whitespace is dropped, as
# the material routes always did ("armor_mechanical:latest\n" was accepted there, refused on /batch)
# The document states what validation checks wherever JSON Schema can say it, so a schema-valid
# request is not refused for its shape (issue 36): the tag rule of model_registry.store.VERSION_PATTERN
ModelVersion = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True)] | None,
    Field(
        description="registry tag or version; default: the serving model",
        json_schema_extra={"pattern": r"^\s*([a-z_]+:)?[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?\s*$"},
    ),
]


def _formula_pattern() -> str:
    """Element symbols with full data, brackets and amounts, starting with a symbol or a bracket:
    features/formula.py's tokens; balanced brackets and non-zero amounts are checked by the parser
    alone (no regular expression can say the first)."""
    symbols = "|".join(sorted(complete_symbols(), key=lambda s: (-len(s), s)))
    amount = r"\d+(\.\d*)?|\.\d+"
    return rf"^\s*({symbols}|[(\[])({symbols}|[()\[\]]|{amount})*\s*$"


def _loads_schema() -> dict[str, Any]:
    """load_n: one load or 1 to MAX_LOADS of them, each in the accepted range (what _loads checks)."""
    one = {"type": "number", "minimum": INDENTATION_LOAD.low, "maximum": INDENTATION_LOAD.high}
    return {
        "anyOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": MAX_LOADS}],
        "default": INDENTATION_LOAD.default,
        "description": f"indentation load(s), N ({INDENTATION_LOAD.low:g}-{INDENTATION_LOAD.high:g}); several "
        f"loads (at most {MAX_LOADS}) show the indentation size effect",
    }


class PredictionRequest(Material):
    """A material plus what to return. ``armor`` is used by the ballistic family only."""

    model_config = ConfigDict(extra="forbid", strict=True)
    include_uncertainty: bool = True
    include_feature_importance: bool = False
    model_version: ModelVersion = None


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


class ArealDensity(BaseModel):
    value: float = Field(description="tile (at its bulk density) plus backing")
    unit: str
    tile: float
    backing: float


class V50Margin(BaseModel):
    value: float = Field(description="predicted V50 minus the threat's reference velocity; negative: perforation")
    unit: str
    threat: str
    reference_velocity: float
    confidence_interval: list[float] | None = Field(None, description="the V50 interval minus the reference velocity")


class BuildSummary(BaseModel):
    """Ballistic answers only: what the build weighs and how far its V50 clears the threat."""

    areal_density: ArealDensity
    v50_margin: V50Margin


class PredictionResponse(BaseModel):
    predictions: dict[str, PropertyPrediction]
    feature_importance: list[FeatureImportance] | None = None
    contribution_base: dict[str, float] | None = Field(
        None, description="base value per target; base + sum of contributions = predicted value"
    )
    build: BuildSummary | None = Field(None, description="ballistic family only")
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

    model_config = ConfigDict(extra="forbid", strict=True)
    formula: str = Field(
        min_length=1,
        max_length=MAX_FORMULA_LENGTH,
        description="chemical formula, e.g. B4C, TiB2, Ti(C0.5N0.5), (HfZrTaNbTi)C5; element symbols with "
        "optional decimal amounts and nested brackets",
        json_schema_extra={"pattern": _formula_pattern()},
    )
    load_n: Annotated[float | list[float], BeforeValidator(_loads), WithJsonSchema(_loads_schema())] = Field(
        cast(float, INDENTATION_LOAD.default),
        description=f"indentation load(s), N ({INDENTATION_LOAD.low:g}-{INDENTATION_LOAD.high:g}); several loads "
        f"(at most {MAX_LOADS}) show the indentation size effect",
    )
    include_uncertainty: bool = True
    include_feature_importance: bool = False
    model_version: ModelVersion = None

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
        description="with several loads: the local power law H = a * load^n through the requested loads "
        "(n < 0: harder at low loads, the indentation size effect), and the model's Li & Bradt law for this "
        "composition: load_independent_gpa (H0, what the hardness levels off to at high load), "
        "characteristic_load_n (P*: below it the size effect is strong), plateau_load_n (the lowest load the law "
        "was fitted at: below it the law is not extrapolated) and plateau_gpa (the hardness held below it)",
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
        description="validation_error, malformed_body, body_too_large, request_timeout, unauthorized, "
        "rate_limited, unknown_model_version, "
        "unavailable, internal_error, not_found, method_not_allowed"
    )
    message: str
    details: list[ErrorDetail] | None = None
    available: list[str] | None = Field(None, description="with unknown_model_version: the stored versions")


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorInfo
    request_id: str | None = Field(None, description="the request's id, as in the X-Request-ID header")


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
    401: _error(
        "with API_KEYS set: no X-API-Key header, or an unknown key",
        {"error": {"status": 401, "type": "unauthorized", "message": "a prediction needs the header X-API-Key ..."}},
    ),
    429: _error(
        "with RATE_LIMIT_PER_MINUTE set: too many requests from this key or address (Retry-After)",
        {"error": {"status": 429, "type": "rate_limited", "message": "more than 60 prediction requests in 60 s; ..."}},
    ),
    408: _error(
        "the request body did not arrive within BODY_READ_TIMEOUT_S",
        {"error": {"status": 408, "type": "request_timeout", "message": "the request body did not arrive within 10 s"}},
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


# What a GET route can fail with: the runner (cards, models) unavailable, or an unexpected failure.
GET_ERRORS: dict[int | str, dict[str, Any]] = {code: PREDICTION_ERRORS[code] for code in (503, 500)}


# "<quantity> <op> <number>", as api/batch/screening.py reads a constraint
WHERE_PATTERN = r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"


def _integral(value: Any) -> Any:
    """1.0 is the integer 1 (JSON Schema's rule for "integer"); 1.5 stays a float and is refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class BatchOptions(BaseModel):
    """What a /batch request asks for besides its materials: the top-level fields of a JSON body,
    the query string of a CSV body. The flags apply to every material, as in a single request."""

    model_config = ConfigDict(extra="forbid", strict=True)
    include_uncertainty: bool = True
    include_feature_importance: bool = False
    model_version: ModelVersion = None
    rank_by: str | None = Field(
        None,
        description="screening: a target of the family, or <target>_low / <target>_high (its 95 % interval's "
        "bounds); the rows that meet `where` come back best first, followed by the row errors",
    )
    order: Literal["descending", "ascending"] = Field(
        "descending", description="with rank_by: best is highest or lowest"
    )
    where: list[str] = Field(
        default_factory=list,
        max_length=32,  # each is checked on every row: their number multiplies the rows' work
        description='screening constraints on targets, e.g. "density <= 3.3", "v50_velocity_low > 850" '
        "(operators <, <=, >, >=); a row must meet all of them",
        json_schema_extra={"items": {"type": "string", "pattern": WHERE_PATTERN}},
    )
    top: Annotated[int | None, BeforeValidator(_integral)] = Field(
        None, ge=1, description="screening: at most this many rows, best first (needs rank_by)"
    )


class BatchRequest(BatchOptions):
    """The JSON body of a /batch route (documentation: the route reads the body itself)."""

    materials: list[dict[str, Any]] = Field(
        description="materials as in a single request (composition, processing, microstructure, armor), without "
        "the flags"
    )


class BatchRowError(BaseModel):
    row: int = Field(description="position of the material in the input, from 0 (CSV: the header is not counted)")
    error: ErrorInfo


class BatchRow(BaseModel):
    row: int = Field(description="position of the material in the input, from 0 (CSV: the header is not counted)")
    predictions: dict[str, PropertyPrediction]
    feature_importance: list[FeatureImportance] | None = None
    contribution_base: dict[str, float] | None = None
    build: BuildSummary | None = Field(None, description="ballistic family only")
    warnings: list[str]
    model_version: str = Field(description="tag of the model that answered; its model_info is in summary.models")
    cached: bool


class BatchSummary(BaseModel):
    rows: int = Field(description="materials received")
    predicted: int
    errors: int
    cached: int = Field(description="rows answered from the response cache")
    matched: int | None = Field(None, description="screening: rows that met every `where` constraint")
    returned: int = Field(description="rows in results (screening: matched rows kept by `top`, plus row errors)")
    models: dict[str, ModelInfo] = Field(description="model_info of every model that answered, by tag")
    processing_time_ms: float
    request_id: str | None = Field(None, description="the request's id, as in its X-Request-ID response header")


class BatchResponse(BaseModel):
    """JSON (Accept: application/json). NDJSON (application/x-ndjson): one result a line as rows are done,
    then {"summary": ...}. CSV (text/csv): one line per result with value, low and high per target."""

    results: list[BatchRow | BatchRowError] = Field(
        description="one entry per material in input order; screening: the matched rows best first, then the errors"
    )
    summary: BatchSummary


class AnswerOptions(Protocol):
    """What shapes an answer besides the material: a single request's fields, or a batch's options
    (``BatchOptions``), which the response key and the runner call read alike."""

    @property
    def include_uncertainty(self) -> bool: ...
    @property
    def include_feature_importance(self) -> bool: ...
    @property
    def model_version(self) -> str | None: ...
