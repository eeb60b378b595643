import math

import numpy as np
import pytest

from features.composition import CompositionDomain, FormulaFeaturizer
from features.elements import PROPERTY_NAMES, library_rows, load_element_table
from features.families import feature_schema
from features.formula import FormulaError, parse_formula
from tests.requirements import require_module


@pytest.fixture(scope="module")
def featurizer():
    return FormulaFeaturizer()


def column(featurizer, X, name):
    return X[:, featurizer.schema.names.index(name)]


def test_the_hand_computation_uses_the_library_values():
    table = load_element_table()
    x = {s: table.values[table.index[s], PROPERTY_NAMES.index("electronegativity")] for s in ("B", "C", "Si")}
    assert x == {"B": 2.04, "C": 2.55, "Si": 1.9}  # Pauling values as pymatgen-core gives them


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        # SiC: Si 1.90, C 2.55, half each
        ("SiC", {"mean": 2.225, "min": 1.9, "max": 2.55, "range": 0.65, "mad": 0.5 * 0.325 + 0.5 * 0.325}),
        # B4C: B 2.04 (0.8), C 2.55 (0.2); mean 1.632 + 0.510; |2.04 - 2.142| = 0.102, |2.55 - 2.142| = 0.408
        ("B4C", {"mean": 2.142, "min": 2.04, "max": 2.55, "range": 0.51, "mad": 0.8 * 0.102 + 0.2 * 0.408}),
    ],
)
def test_electronegativity_statistics_match_the_hand_computation(featurizer, formula, expected):
    X = featurizer.transform_formulas([formula], np.array([9.8]))
    got = {stat: float(column(featurizer, X, f"{stat}_electronegativity")[0]) for stat in expected}
    assert got == pytest.approx(expected, abs=1e-12)


def test_stoichiometry_valence_and_ionic_character_by_hand(featurizer):
    X = featurizer.transform_formulas(["B4C", "TiB2"], np.array([1.0, 1.0]))
    assert column(featurizer, X, "n_elements").tolist() == [2.0, 2.0]
    assert column(featurizer, X, "norm_2")[0] == pytest.approx(math.sqrt(0.8**2 + 0.2**2))
    # TiB2: Ti [Ar]3d2 4s2 (s2 d2), B [He]2s2 2p1 (s2 p1): mean p 2/3, mean total 1/3*4 + 2/3*3
    assert column(featurizer, X, "valence_fraction_p")[1] == pytest.approx((2 / 3) / (4 / 3 + 2))
    ionic = 1 - math.exp(-0.25 * (2.55 - 2.04) ** 2)
    assert column(featurizer, X, "max_ionic_character")[0] == pytest.approx(ionic)
    assert column(featurizer, X, "mean_ionic_character")[0] == pytest.approx(2 * 0.8 * 0.2 * ionic)


def test_load_columns_and_row_order(featurizer):
    X = featurizer.transform_formulas(["SiC", "B4C", "SiC"], np.array([9.8, 1.0, 0.5]))
    assert column(featurizer, X, "load_n").tolist() == [9.8, 1.0, 0.5]
    assert column(featurizer, X, "log_load") == pytest.approx(np.log([9.8, 1.0, 0.5]))
    composition = [i for i, c in enumerate(featurizer.schema.categories) if c == "composition"]
    assert np.array_equal(X[0, composition], X[2, composition])
    assert not np.array_equal(X[0, composition], X[1, composition])
    alone = featurizer.transform_formulas(["B4C"], np.array([1.0]))
    assert np.array_equal(alone[0], X[1])


def test_every_measured_formula_gives_finite_features(featurizer):
    from model_registry.hardness import read_hardness_csv

    data = read_hardness_csv()
    X = featurizer.transform(data.compositions, data.load_n)
    assert X.shape == (1062, len(featurizer.schema.names))
    assert np.isfinite(X).all()


def test_an_element_without_data_is_refused_not_imputed(featurizer):
    with pytest.raises(FormulaError) as caught:
        featurizer.transform_formulas(["XeF2"], np.array([1.0]))
    assert caught.value.reason == "element_without_data"
    assert caught.value.message.startswith('element "Xe" in "XeF2" has no atomic_radius')


@pytest.mark.parametrize("load", [0.0, -1.0, np.nan, np.inf])
def test_a_load_must_be_positive(featurizer, load):
    with pytest.raises(ValueError, match="positive number of newtons"):
        featurizer.transform_formulas(["SiC"], np.array([load]))


def test_the_family_schema_is_the_formula_featurizers(featurizer):
    assert feature_schema("hardness") == featurizer.schema
    assert feature_schema("hardness").categories[-2:] == ("load", "load")


def test_domain_flags_unseen_elements_far_compositions_and_loads(featurizer):
    training = [parse_formula(f) for f in ("SiC", "B4C", "TiB2", "TiC", "WC", "ZrO2", "TiN", "ZrC")]
    loads = np.linspace(0.5, 10.0, len(training))
    domain = CompositionDomain.fit(training, featurizer.transform(training, loads), featurizer.schema)
    asked = [parse_formula(f) for f in ("SiC", "UO2", "B4C")]
    X = featurizer.transform(asked, np.array([1.0, 1.0, 50.0]))
    distance, _ = domain.nearest(X, featurizer.schema)
    assert distance[0] == pytest.approx(0.0, abs=1e-9)
    warnings = domain.warnings(asked, X, featurizer.schema)
    assert warnings[0] == []
    assert warnings[1][0] == "element(s) U not in the measured training data: the prediction extrapolates"
    assert warnings[1][1].startswith("composition far from the measured data")
    assert warnings[2] == ["load 50 N outside the measured loads (0.5-10 N)"]
    again = CompositionDomain.from_dict(domain.to_dict())
    assert again.warnings(asked, X, featurizer.schema) == warnings


def test_the_committed_element_table_is_what_the_library_gives():
    require_module("pymatgen.core", group="elements", enable="pip install -e '.[elements]'")
    table = load_element_table()
    rows = library_rows()
    assert table.symbols == tuple(r["symbol"] for r in rows)
    expected = np.array([[r[p] for p in PROPERTY_NAMES] for r in rows])
    np.testing.assert_array_equal(table.values, expected)  # NaN where the library has no value
