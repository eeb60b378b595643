"""The domain check: inputs outside the training data's range and unusual combinations are
named in ``warnings`` (flagged, never refused). Ranges come from the model's metadata (the
training split's min and max of each feature), so they follow whatever data a model saw."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from api.transport.errors import InvalidInput
from features.batch import field_value
from features.catalogue import family_numeric_inputs
from features.phases import PHASES, load_armor_tables, validated_backings
from features.schema import Material

# The training data approach the accepted bounds without reaching them exactly (0.2999 for a
# bound of 0.3): a value within this share of the training range beyond its edge is not an
# extrapolation worth a warning (the interval still widens with the exact distance).
RANGE_SLACK = 0.005

# A V50 this many times the threat's reference velocity is reported as an overmatch: the round
# never reaches such speeds, so the figure only says "defeats this threat" (a reporting threshold
# of this project, not a physical constant).
OVERMATCH_FACTOR = 1.5


@dataclass(frozen=True)
class UnusualCombination:
    """A rule on the material and its volume fractions ``v`` (phase -> fraction, absent = 0)."""

    description: str
    applies: Callable[[Material, dict[str, float]], bool]


UNUSUAL = (
    UnusualCombination(
        "more than 80 % SiC with more than 15 % B4C", lambda m, v: v.get("SiC", 0) > 0.8 and v.get("B4C", 0) > 0.15
    ),
    UnusualCombination(
        "non-oxide phases above 50 % sintered in air (oxidation)",
        lambda m, v: (
            m.processing.atmosphere == "air"
            and sum(f for p, f in v.items() if p not in ("Al2O3", "ZrO2", "other")) > 0.5
        ),
    ),
    UnusualCombination(
        "ZrO2 above 30 % sintered above 1900 degC (grain growth, loss of transformation toughening)",
        lambda m, v: v.get("ZrO2", 0) > 0.3 and m.processing.sintering_temperature > 1900,
    ),
    UnusualCombination(
        "porosity above 15 % under more than 100 MPa pressure",
        lambda m, v: m.microstructure.porosity > 0.15 and m.processing.pressure > 100,
    ),
    UnusualCombination("unknown filler ('other') above 20 %", lambda m, v: v.get("other", 0) > 0.2),
)


def check(
    material: Material, volume_fractions: dict[str, float], feature_ranges: dict[str, list[float]], family: str
) -> tuple[list[str], bool]:
    """Warnings for one material and whether any input lies outside the training range.
    ``volume_fractions``: the composition as the model sees it (weight fractions converted)."""
    warnings, outside = [], False
    for spec in family_numeric_inputs(family):
        name = spec.name
        value, bounds = field_value(material, name), feature_ranges.get(name)
        if bounds is None:
            continue
        low, high = bounds
        slack = RANGE_SLACK * (high - low)
        if not low - slack <= value <= high + slack:
            outside = True
            unit = "" if spec.unit.startswith("(") else f" {spec.unit}"
            warnings.append(
                f"{name} = {value:g}{unit} is outside the training data's range "
                f"{low:.4g}-{high:.4g}{unit}: the prediction extrapolates"
            )
    for phase in PHASES:
        bounds, fraction = feature_ranges.get(f"frac_{phase}"), volume_fractions.get(phase, 0.0)
        if bounds and fraction > bounds[1] + 1e-9:
            outside = True
            warnings.append(
                f"composition.{phase} = {fraction:.4g} (volume fraction) is above the training "
                f"data's maximum {bounds[1]:.3g}"
            )
    warnings += [f"unusual combination: {u.description}" for u in UNUSUAL if u.applies(material, volume_fractions)]
    return warnings, outside


def ballistic_warnings(material: Material, values: dict[str, float]) -> list[str]:
    """What the V50 means against the requested threat: perforation expected, or an overmatch."""
    threat = material.armor.threat
    reference = float(load_armor_tables()["threats"][threat]["velocity_m_s"])
    v50 = values["v50_velocity"]
    if v50 < reference:
        return [
            f"v50_velocity = {v50:.0f} m/s is below the {threat} reference velocity {reference:g} m/s: "
            f"perforation expected at that velocity; back_face_deformation describes a stopped round and "
            f"is extrapolated here"
        ]
    if v50 > OVERMATCH_FACTOR * reference:
        return [
            f"v50_velocity = {v50:.0f} m/s is more than {OVERMATCH_FACTOR:g}x the {threat} reference velocity "
            f"{reference:g} m/s: the configuration overmatches this threat; the figure extrapolates the V50 "
            f"relation to speeds this round does not reach (read it as 'defeats this threat')"
        ]
    return []


def refuse_unvalidated(material: Material) -> None:
    """A ballistic request on a backing the V50 relation does not hold for is refused (422)."""
    backing, valid = material.armor.backing, validated_backings()
    if backing not in valid:
        message = (
            f"the ballistic models are validated for the backings {list(valid)} only: their V50 relation "
            f"(Florence 1969) is derived for ductile metal backings and does not model {backing!r} "
            f"(docs/science.md)"
        )
        raise InvalidInput(
            f"invalid request: armor.backing: {message}", [{"field": "armor.backing", "message": message}]
        )
