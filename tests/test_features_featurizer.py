import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from features.batch import MaterialBatch, normalise_fractions
from features.featurizer import Featurizer
from features.phases import PHASES, load_phase_table
from features.schema import Material

_REQUEST = json.loads((Path(__file__).parent / "testdata" / "example_request.json").read_text())
EXAMPLE = {k: _REQUEST[k] for k in ("composition", "processing", "microstructure")}


def material(**composition) -> Material:
    return Material.model_validate({**EXAMPLE, "composition": composition})


@pytest.mark.parametrize("family, extra", [("mechanical", 0), ("ballistic", 14)])
def test_shape_and_schema(family, extra):
    featurizer = Featurizer(family)
    X = featurizer.transform(MaterialBatch.from_materials([material(SiC=1.0)] * 3))
    assert X.shape == (3, len(featurizer.schema.names))
    assert len(featurizer.schema.names) == len(Featurizer("mechanical").schema.names) + extra
    assert featurizer.schema.names[: len(PHASES)] == tuple(f"frac_{p}" for p in PHASES)
    assert np.isfinite(X).all()


def test_schema_fingerprint_changes_with_family():
    assert Featurizer("mechanical").schema.fingerprint != Featurizer("ballistic").schema.fingerprint


def test_batch_equals_rows_one_by_one():
    featurizer = Featurizer("ballistic")
    materials = [material(SiC=1.0), material(B4C=0.5, TiB2=0.5), material(Al2O3=0.9, ZrO2=0.1)]
    together = featurizer.transform(MaterialBatch.from_materials(materials))
    apart = np.vstack([featurizer.transform(MaterialBatch.from_materials([m])) for m in materials])
    np.testing.assert_allclose(together, apart)


def test_theoretical_and_bulk_density_follow_rule_of_mixtures():
    featurizer = Featurizer("ballistic")
    X = featurizer.transform(MaterialBatch.from_materials([material(SiC=0.5, B4C=0.5)]))
    names = featurizer.schema.names
    # 6H-SiC and B4C theoretical densities (features/data/phases.json)
    assert X[0, names.index("theoretical_density")] == pytest.approx(0.5 * 3.213 + 0.5 * 2.52)
    assert X[0, names.index("bulk_density")] == pytest.approx((1 - 0.02) * (0.5 * 3.213 + 0.5 * 2.52))


def test_weight_fractions_convert_through_phase_densities():
    weight = Material.model_validate({**EXAMPLE, "composition": {"WC": 0.5, "SiC": 0.5, "basis": "weight"}})
    batch = MaterialBatch.from_materials([weight])
    rho = load_phase_table().density
    v_wc = (0.5 / rho[PHASES.index("WC")]) / (0.5 / rho[PHASES.index("WC")] + 0.5 / rho[PHASES.index("SiC")])
    assert batch.volume_fractions[0, PHASES.index("WC")] == pytest.approx(v_wc)
    assert batch.volume_fractions[0].sum() == pytest.approx(1.0)
    # theoretical density from weights: 1 / sum(w_i / rho_i)
    X = Featurizer("mechanical").transform(batch)
    expected = 1 / (0.5 / rho[PHASES.index("WC")] + 0.5 / rho[PHASES.index("SiC")])
    assert X[0, Featurizer("mechanical").schema.names.index("theoretical_density")] == pytest.approx(expected)


def test_fractions_within_tolerance_are_renormalised():
    out = normalise_fractions(np.array([[0.6, 0.395] + [0.0] * (len(PHASES) - 2)]), np.array([False]))
    assert out.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "composition, fragment",
    [
        ({"SiC": 0.6, "B4C": 0.3}, "sum to 0.9000"),
        ({"SiC": 0.7, "B4C": 0.5}, "sum to 1.2000"),
        ({"SiC": 1.2}, "between 0 and 1"),
        ({"SiC": 0.5, "Unobtainium": 0.5}, "known phases"),
    ],
)
def test_rejects_bad_fractions(composition, fragment):
    with pytest.raises(ValidationError) as info:
        Material.model_validate({**EXAMPLE, "composition": composition})
    assert fragment in str(info.value)


def test_hashin_shtrikman_bounds_lie_between_reuss_and_voigt():
    featurizer = Featurizer("mechanical")
    X = featurizer.transform(MaterialBatch.from_materials([material(WC=0.3, ZrO2=0.7)]))
    col = {n: X[0, i] for i, n in enumerate(featurizer.schema.names)}
    assert col["modulus_reuss"] <= col["modulus_hs_lower"] <= col["modulus_hs_upper"] <= col["modulus_voigt"]
