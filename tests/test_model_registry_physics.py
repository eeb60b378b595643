"""Physics sanity of trained models (small reference data, so the suite stays quick)."""

import numpy as np
import pytest

from features.batch import MaterialBatch
from features.featurizer import Featurizer, mixture_properties
from features.schema import Material

BASE = {
    "processing": {"sintering_temperature": 2000, "pressure": 40, "grain_size": 5},
    "microstructure": {"porosity": 0.02},
}
MONOTONE_TARGETS = ("density", "vickers_hardness", "elastic_modulus", "flexural_strength", "compressive_strength")


def materials(compositions, porosity=0.02):
    return [
        Material.model_validate({**BASE, "composition": c, "microstructure": {"porosity": porosity}})
        for c in compositions
    ]


def predict(model, mats):
    return model.predict(Featurizer(model.family).transform(MaterialBatch.from_materials(mats)))


def test_density_matches_rule_of_mixtures_within_its_interval(trained, small_data):
    batch, _ = small_data
    model = trained["mechanical"].model
    sample = batch.take(np.arange(300))
    pred = model.predict(Featurizer("mechanical").transform(sample))
    rom = mixture_properties(sample)["theoretical_density"] * (1 - sample.porosity)
    col = model.targets.index("density")
    inside = (pred.lower[:, col] <= rom) & (rom <= pred.upper[:, col])
    assert inside.mean() >= 0.93
    assert np.median(np.abs(pred.values[:, col] / rom - 1)) < 0.02


DENSITY_CASES = [{p: 1.0} for p in ("SiC", "B4C", "Al2O3", "WC", "TiC", "TiB2", "ZrO2", "AlN", "Si3N4")] + [
    {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1},
    {"Al2O3": 0.8, "ZrO2": 0.2},
    {"B4C": 0.7, "TiB2": 0.3},
    {"WC": 0.5, "TiC": 0.5},
]


@pytest.mark.parametrize("composition", DENSITY_CASES, ids=lambda c: "+".join(c))
def test_density_is_the_theoretical_density_times_one_minus_porosity(trained, composition):
    """Every phase and some mixtures: rho = rho_th (1 - P) within 1 %, the physical value inside the
    interval (rho_th from the phase table's crystallographic densities)."""
    model = trained["mechanical"].model
    for porosity in (0.0, 0.1, 0.2, 0.3):
        mats = materials([composition], porosity)
        pred = predict(model, mats)
        physical = mixture_properties(MaterialBatch.from_materials(mats))["theoretical_density"][0] * (1 - porosity)
        col = model.targets.index("density")
        assert pred.values[0, col] == pytest.approx(physical, rel=0.01), porosity
        assert pred.lower[0, col] <= physical <= pred.upper[0, col], porosity


@pytest.mark.parametrize(
    "composition", [{"SiC": 1.0}, {"B4C": 0.7, "TiB2": 0.3}, {"Al2O3": 0.9, "ZrO2": 0.1}, {"WC": 0.4, "TiC": 0.6}]
)
def test_more_porosity_never_raises_mechanical_properties(trained, composition):
    model = trained["mechanical"].model
    porosities = np.linspace(0.0, 0.3, 13)
    values = np.vstack([predict(model, materials([composition], float(p))).values[0] for p in porosities])
    for target in MONOTONE_TARGETS:
        column = values[:, model.targets.index(target)]
        assert np.all(np.diff(column) <= 1e-9), (target, column)


def test_dense_b4c_lighter_than_sic_lighter_than_alumina(trained):
    model = trained["mechanical"].model
    pred = predict(model, materials([{"B4C": 1.0}, {"SiC": 1.0}, {"Al2O3": 1.0}], porosity=0.0))
    density = pred.values[:, model.targets.index("density")]
    assert density[0] < density[1] < density[2]


def test_thicker_tile_raises_predicted_v50(trained):
    model = trained["ballistic"].model
    thin, thick = (
        Material.model_validate({**BASE, "composition": {"SiC": 1.0}, "armor": {"tile_thickness": t}})
        for t in (6.0, 14.0)
    )
    pred = predict(model, [thin, thick]).values[:, model.targets.index("v50_velocity")]
    assert pred[1] > pred[0]


# Property-based: random materials anywhere in the accepted domain, one input moved up; every
# target with a physical trend in that input must move with the trend (or stay, never reverse).
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from features.catalogue import numeric_inputs  # noqa: E402
from features.phases import PHASES  # noqa: E402
from features.targets import BASELINES  # noqa: E402

SPECS = {i.name: i for i in numeric_inputs()}
TREND_INPUTS = sorted({i for b in BASELINES.values() for i in b.trends})


@st.composite
def material_pair(draw):
    weights = [draw(st.floats(0.0, 1.0)) for _ in PHASES[:-1]]
    if sum(weights) < 1e-3:
        weights[0] = 1.0
    composition = {p: w / sum(weights) for p, w in zip(PHASES[:-1], weights, strict=True)}
    values = {}
    for name, spec in SPECS.items():
        fraction, low, high = draw(st.floats(0.0, 1.0)), spec.low, spec.high
        scaled = low * (high / low) ** fraction if spec.log_scaled else low + (high - low) * fraction
        values[name] = float(scaled)
    moved = draw(st.sampled_from(TREND_INPUTS))
    low, high = SPECS[moved].low, SPECS[moved].high
    higher = dict(values, **{moved: min(high, values[moved] + draw(st.floats(0.01, 1.0)) * (high - low))})
    return composition, values, higher, moved


def _material(composition, values):
    body: dict = {"composition": composition}
    for name, value in values.items():
        body.setdefault(SPECS[name].block, {})[name] = value
    return Material.model_validate(body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(material_pair())
def test_every_trend_holds_anywhere_in_the_accepted_domain(trained, pair):
    composition, low_values, high_values, moved = pair
    for family, t in trained.items():
        model = t.model
        pred = predict(model, [_material(composition, low_values), _material(composition, high_values)]).values
        for o, target in enumerate(model.targets):
            trend = BASELINES[target].trends.get(moved, 0)
            if trend:
                step = trend * (pred[1, o] - pred[0, o])
                assert step >= -1e-9 * abs(pred[0, o]), (
                    family,
                    target,
                    moved,
                    low_values[moved],
                    high_values[moved],
                    pred[:, o],
                )
