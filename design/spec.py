"""A design request (POST /api/v1/design) and the problem it states, checked against the catalogue.

Every refusal is a 422 naming the field: ``free.processing.sintering_temperature`` for bounds
outside the accepted range or an empty range, ``objectives.0.target`` for an unknown target,
``constraints`` for two constraints no candidate can meet together, ``max_evaluations`` over the
server's cap (DESIGN_MAX_EVALUATIONS), ``fixed.<path>`` for a fixed value the single route refuses.
Constraints use the /batch routes' ``where`` grammar (api/batch/screening.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.batch.screening import Constraint, Quantity, constraint, quantity
from api.prediction import domain
from api.prediction.schemas import PredictionRequest
from api.transport.errors import ApiError, InvalidInput
from design.space import COMPOSITION, ChoiceVariable, NumericVariable, Space
from features.catalogue import (
    BALLISTIC_ONLY_BLOCKS,
    BLOCKS,
    TARGETS,
    CategoricalInput,
    NumericInput,
    block_inputs,
    inputs,
)
from features.phases import PHASES
from settings import DesignSettings

ALL_TARGETS = (*TARGETS["mechanical"], *TARGETS["ballistic"])
MAX_CONSTRAINTS = 16

EXAMPLE: dict[str, Any] = {
    "fixed": {
        "armor": {"tile_thickness": 10, "backing": "aluminum_6061_t6", "backing_thickness": 6, "threat": "7.62x51_m80"}
    },
    "free": {
        "composition": ["SiC", "B4C", "Al2O3"],
        "processing.sintering_temperature": [1800, 2100],
        "microstructure.porosity": [0.0, 0.05],
    },
    "constraints": ["density_high <= 3.3"],
    "objectives": [{"target": "v50_velocity_low", "goal": "maximize"}, {"target": "density", "goal": "minimize"}],
    "max_evaluations": 2000,
    "seed": 1,
}


def invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(f"invalid request: {field_name}: {message}", [{"field": field_name, "message": message}])


class ObjectiveSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    target: str = Field(description="a target of either family, or <target>_low / <target>_high")
    goal: Literal["maximize", "minimize"]
    reference: float | None = Field(
        None,
        description="the worst value that still counts, for the hypervolume (default: the worst feasible value "
        "found, plus a tenth of the range)",
    )


class DesignRequest(BaseModel):
    """What to search, under which constraints, for which objectives, with which budget."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"example": EXAMPLE})
    fixed: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="blocks of a single-route body held as given (composition, processing, microstructure, armor); "
        "with armor, candidates are also evaluated by the ballistic models",
    )
    free: dict[str, list[Any]] = Field(
        description='"composition": the phases to mix (fractions sum to 1); "<block>.<input>": [low, high] within '
        "the catalogue's accepted range, or a list of levels of a categorical input"
    )
    constraints: list[str] = Field(
        default_factory=list,
        max_length=MAX_CONSTRAINTS,
        description='as the /batch routes\' where: "density_high <= 3.3", "v50_velocity_low >= 847"',
    )
    objectives: list[ObjectiveSpec] = Field(min_length=1, max_length=3)
    max_evaluations: int = Field(1000, ge=1, description="candidates to evaluate (at most DESIGN_MAX_EVALUATIONS)")
    max_seconds: float | None = Field(None, gt=0, description="search time (default and cap: DESIGN_MAX_SECONDS)")
    seed: int = 0
    strategy: Literal["optimize", "explore", "random"] = Field(
        "optimize",
        description="optimize: the Pareto front (NSGA-II); explore: also K diverse suggestions of what to test "
        "next, ranked by an optimistic acquisition over the 95 % intervals; random: random search (a baseline)",
    )
    out_of_domain: Literal["flag", "exclude"] = Field(
        "flag", description="candidates outside the training data's range: kept and flagged, or not feasible"
    )
    suggestions: int = Field(5, ge=1, le=50, description="explore: how many suggestions")
    closest: int = Field(5, ge=1, le=50, description="with no feasible candidate: how many of the closest")


@dataclass(frozen=True)
class Objective:
    text: str
    quantity: Quantity
    maximize: bool
    reference: float | None

    def loss(self, predictions: dict[str, Any]) -> float:
        """The quantity to minimise (a maximised one negated)."""
        value = self.quantity.of(predictions)
        return -value if self.maximize else value


@dataclass(frozen=True)
class Problem:
    space: Space
    families: tuple[str, ...]
    constraints: tuple[Constraint, ...]
    constraint_texts: tuple[str, ...]
    objectives: tuple[Objective, ...]
    max_evaluations: int
    max_seconds: float
    seed: int
    strategy: str
    exclude_outside: bool
    suggestions: int
    closest: int


def _ballistic(request: DesignRequest) -> bool:
    return "armor" in request.fixed or any(key.split(".")[0] in BALLISTIC_ONLY_BLOCKS for key in request.free)


def _free_composition(request: DesignRequest) -> tuple[str, ...]:
    phases = request.free.get(COMPOSITION)
    if phases is None:
        return ()
    field_name = f"free.{COMPOSITION}"
    if not phases:
        raise invalid(field_name, "name at least one phase")
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise invalid(field_name, f"unknown phase(s) {unknown}; known phases: {list(PHASES)}")
    if len(set(phases)) != len(phases):
        raise invalid(field_name, "a phase is named twice")
    if COMPOSITION in request.fixed:
        raise invalid(f"fixed.{COMPOSITION}", "the composition is free (free.composition): leave it out of fixed")
    return tuple(phases)


def _numeric(path: str, spec: NumericInput, bounds: list[Any]) -> NumericVariable:
    field_name = f"free.{path}"
    if len(bounds) != 2 or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds):
        raise invalid(field_name, "give [low, high], two numbers")
    low, high = float(bounds[0]), float(bounds[1])
    if not low < high:
        raise invalid(field_name, f"an empty range: low {low:g} is not below high {high:g}")
    if low < spec.low or high > spec.high:
        raise invalid(
            field_name, f"[{low:g}, {high:g}] is outside the accepted range {spec.low:g}-{spec.high:g} {spec.unit}"
        )
    return NumericVariable(spec.block, spec.name, low, high, spec.log_scaled and low > 0)


def _choice(path: str, spec: CategoricalInput, levels: list[Any]) -> ChoiceVariable:
    unknown = [level for level in levels if level not in spec.levels]
    if not levels or unknown:
        raise invalid(f"free.{path}", f"give levels among {list(spec.levels)}")
    return ChoiceVariable(spec.block, spec.name, tuple(dict.fromkeys(levels)))


def _variables(request: DesignRequest, ballistic: bool) -> list[NumericVariable | ChoiceVariable]:
    by_path = {f"{spec.block}.{spec.name}": spec for spec in inputs()}
    found: list[NumericVariable | ChoiceVariable] = []
    for path, value in request.free.items():
        if path == COMPOSITION:
            continue
        spec = by_path.get(path)
        if spec is None:
            raise invalid(f"free.{path}", f"unknown input; known: {[COMPOSITION, *by_path]}")
        block, name = path.split(".")
        if name in request.fixed.get(block, {}):
            raise invalid(f"free.{path}", f"also fixed (fixed.{path}): an input is fixed or free, not both")
        found.append(_numeric(path, spec, value) if isinstance(spec, NumericInput) else _choice(path, spec, value))
    return found


def _template(request: DesignRequest, ballistic: bool) -> dict[str, Any]:
    """Every block of a complete body: the fixed values over the catalogue's defaults."""
    unknown = [key for key in request.fixed if key not in (COMPOSITION, *BLOCKS)]
    if unknown:
        raise invalid(f"fixed.{unknown[0]}", f"unknown block; known: {[COMPOSITION, *BLOCKS]}")
    template: dict[str, Any] = {COMPOSITION: dict(request.fixed.get(COMPOSITION, {}))}
    for block in BLOCKS:
        if block in BALLISTIC_ONLY_BLOCKS and not ballistic:
            continue
        defaults = {spec.name: spec.default for spec in block_inputs(block) if spec.default is not None}
        template[block] = defaults | request.fixed.get(block, {})
    return template | {"include_uncertainty": True}


def _refusal(body: dict[str, Any], ballistic: bool) -> ApiError | None:
    try:
        request = PredictionRequest.model_validate(body)
        if ballistic:
            domain.refuse_unvalidated(request)
    except ValidationError as exc:
        return InvalidInput.from_validation(exc, PredictionRequest)
    except ApiError as exc:
        return exc
    return None


def _validated(space: Space, ballistic: bool) -> None:
    """The fixed values and the free levels as the single route takes them (its refusals named
    under ``fixed.`` or ``free.``)."""
    free = {v.path for v in space.choices}
    for body in space.probes():
        refused = _refusal(body, ballistic)
        if refused is None:
            continue
        details = [{**d, "field": f"{'free' if d['field'] in free else 'fixed'}.{d['field']}"} for d in refused.details]
        hint = "; give it in fixed or free" if any(d["message"] == "field required" for d in details) else ""
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise InvalidInput(f"invalid request: {summary}{hint}", details)


def _family_check(target: str, ballistic: bool, field_name: str) -> None:
    if not ballistic and target in TARGETS["ballistic"]:
        raise invalid(field_name, f"{target!r} is a ballistic target: give an armor build in fixed.armor")


def _objective(spec: ObjectiveSpec, index: int, ballistic: bool) -> Objective:
    field_name = f"objectives.{index}.target"
    found = quantity(spec.target, ALL_TARGETS, True, field_name)
    _family_check(found.target, ballistic, field_name)
    return Objective(spec.target, found, spec.goal == "maximize", spec.reference)


def _objectives(specs: list[ObjectiveSpec], ballistic: bool) -> tuple[Objective, ...]:
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.target in seen:
            raise invalid(f"objectives.{i}.target", f"{spec.target!r} is already an objective")
        seen.add(spec.target)
    return tuple(_objective(spec, i, ballistic) for i, spec in enumerate(specs))


def _constraints(texts: list[str], ballistic: bool) -> tuple[Constraint, ...]:
    found = tuple(constraint(text, ALL_TARGETS, True, f"constraints.{i}") for i, text in enumerate(texts))
    for i, c in enumerate(found):
        _family_check(c.quantity.target, ballistic, f"constraints.{i}")
    for i, a in enumerate(found):
        for j, b in enumerate(found[i + 1 :], start=i + 1):
            if _contradict(a, b) or _contradict(b, a):
                raise invalid(
                    "constraints", f"{texts[i]!r} and {texts[j]!r} cannot both hold: the problem is infeasible"
                )
    return found


def _contradict(upper: Constraint, lower: Constraint) -> bool:
    """An upper limit below a lower limit of the same quantity (equal: with a strict one)."""
    if upper.quantity != lower.quantity or not upper.upper or lower.upper:
        return False
    strict = upper.operator == "<" or lower.operator == ">"
    return upper.limit < lower.limit or (strict and upper.limit == lower.limit)


def problem(request: DesignRequest, limits: DesignSettings) -> Problem:
    """The request as a Problem; a 422 naming the field when it cannot be searched."""
    if request.max_evaluations > limits.max_evaluations:
        raise invalid("max_evaluations", f"{request.max_evaluations} is over the server's cap {limits.max_evaluations}")
    if request.max_seconds is not None and request.max_seconds > limits.max_seconds:
        raise invalid("max_seconds", f"{request.max_seconds:g} s is over the server's cap {limits.max_seconds:g} s")
    if not request.free:
        raise invalid("free", "nothing to search: give at least one free input")
    ballistic = _ballistic(request)
    phases = _free_composition(request)
    variables = _variables(request, ballistic)
    numeric = tuple(v for v in variables if isinstance(v, NumericVariable))
    choices = tuple(v for v in variables if isinstance(v, ChoiceVariable))
    space = Space(phases, numeric, choices, _template(request, ballistic))
    _validated(space, ballistic)
    return Problem(
        space=space,
        families=("mechanical", "ballistic") if ballistic else ("mechanical",),
        constraints=_constraints(request.constraints, ballistic),
        constraint_texts=tuple(request.constraints),
        objectives=_objectives(request.objectives, ballistic),
        max_evaluations=request.max_evaluations,
        max_seconds=request.max_seconds or limits.max_seconds,
        seed=request.seed,
        strategy=request.strategy,
        exclude_outside=request.out_of_domain == "exclude",
        suggestions=request.suggestions,
        closest=request.closest,
    )
