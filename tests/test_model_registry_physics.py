"""Physics sanity of trained models (small reference data, so the suite stays quick)."""

import numpy as np
import pytest

from features.batch import MaterialBatch
from features.featurizer import Featurizer, mixture_properties
from features.schema import Material

BASE = {"processing": {"sintering_temperature": 2000, "pressure": 40, "grain_size": 5},
        "microstructure": {"porosity": 0.02}}
MONOTONE_TARGETS = ("density", "vickers_hardness", "elastic_modulus", "flexural_strength", "compressive_strength")


def materials(compositions, porosity=0.02):
    return [Material.model_validate({**BASE, "composition": c, "microstructure": {"porosity": porosity}})
            for c in compositions]


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


@pytest.mark.parametrize("composition", [{"SiC": 1.0}, {"B4C": 0.7, "TiB2": 0.3}, {"Al2O3": 0.9, "ZrO2": 0.1},
                                         {"WC": 0.4, "TiC": 0.6}])
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
    thin, thick = (Material.model_validate({**BASE, "composition": {"SiC": 1.0}, "armor": {"tile_thickness": t}})
                   for t in (6.0, 14.0))
    pred = predict(model, [thin, thick]).values[:, model.targets.index("v50_velocity")]
    assert pred[1] > pred[0]
