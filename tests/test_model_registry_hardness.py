import numpy as np
import pytest

from features.composition import CompositionDomain
from model_registry import hardness
from model_registry.hardness import HardnessConfig, composition_folds, read_hardness_csv, train_hardness

QUIET = lambda message: None  # noqa: E731
TINY = HardnessConfig(n_estimators=10, folds=3, calibration_folds=3, importance_rows=40, importance_repeats=1)


@pytest.fixture(scope="module")
def data():
    return read_hardness_csv()


@pytest.fixture(scope="module")
def served(data):
    """The served configuration on all rows, without the grouped CV (a few seconds)."""
    return train_hardness(data, HardnessConfig(importance_rows=40, importance_repeats=1), QUIET, evaluate=False)


def test_the_measured_table(data):
    assert len(data.load_n) == 1062
    assert len(set(data.groups)) == 529
    assert data.hardness_gpa.min() > 0 and data.load_n.min() > 0


def test_folds_never_split_a_composition():
    groups = np.array(["B0.666667Ti0.333333"] * 3 + ["C0.5Si0.5"] * 2 + [f"g{i}" for i in range(20)])
    for train, test in composition_folds(groups, 5, seed=0):
        assert not set(groups[train]) & set(groups[test])
        assert len(train) + len(test) == len(groups)


def test_a_formula_written_two_ways_is_one_group(tmp_path):
    path = tmp_path / "hv.csv"
    path.write_text("composition,hardness,load\nTiB2,30,0.5\nB2Ti,25,5\nSiC,25,1\n")
    assert len(set(read_hardness_csv(path).groups)) == 2


def test_the_load_exponent_is_fitted_within_compositions():
    # softer compounds measured at higher loads: pooled, ln H falls with ln P much faster than within
    log_load = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    level = {"a": 3.5, "b": 2.5, "c": 1.5}
    log_h = np.array([level[g] for g in groups]) - 0.15 * log_load
    assert hardness.within_composition_slope(log_load, log_h, groups) == pytest.approx(-0.15)
    assert np.polyfit(log_load, log_h, 1)[0] < -0.5


def test_grouped_cv_report_on_a_subset(data):
    rows = np.flatnonzero(np.isin(data.groups, sorted(set(data.groups))[:150]))
    trained = train_hardness(data.subset(rows), TINY, QUIET)
    evaluation = trained.card_extra["evaluation"]
    assert set(evaluation) >= {"model", "mean_predictor", "ridge", "per_fold", "split", "published"}
    assert evaluation["folds_disjoint_by_composition"] is True
    assert evaluation["rows"] == len(rows) and evaluation["compositions"] == 150
    model, mean = evaluation["model"], evaluation["mean_predictor"]
    assert set(model) == {
        "mae",
        "rmse",
        "r2",
        "median_relative_error",
        "coverage_95",
        "mean_interval_width",
        "mean_relative_width",
    }
    assert evaluation["anchors_in_training"] == 9  # scored rows are the measured ones only
    held_out = evaluation["held_out_hard_ceramics"]
    assert held_out["rows"] > 0 and 0 <= held_out["coverage_95"] <= 1 and held_out["mean_relative_width"] > 0
    assert 0 <= evaluation["in_data_widths"]["share_no_wider_than_spread"] <= 1
    assert 0 < model["mae"] <= model["rmse"] and model["r2"] <= 1
    assert model["mae"] < mean["mae"]  # better than predicting the mean, even on a fifth of the data
    assert 0.7 <= model["coverage_95"] <= 1.0
    assert trained.metrics["vickers_hardness"]["test_samples"] == len(rows)
    assert trained.card_extra["dataset"]["file"] == "data/vickers_hardness_measured.csv"


def test_hardness_falls_with_load_and_ranks_the_armor_ceramics(served):
    rows = hardness.predict_formulas(served.model, ["B4C", "Al2O3", "ZrO2"], load_n=9.8)
    b4c, al2o3, zro2 = (r["value"] for r in rows)
    assert b4c > al2o3 > zro2
    for r in rows:
        assert r["lower"] < r["value"] < r["upper"]
    loads = [0.1, 0.5, 1.0, 5.0, 9.8, 50.0]
    values = [hardness.predict_formulas(served.model, ["TiB2"], load)[0]["value"] for load in loads]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # indentation size effect
    assert values[2] > values[4]
    # the size effect fades: 9.8 -> 50 N costs less than 1 -> 5 N
    assert values[4] / values[5] < values[2] / values[3]


def test_the_size_effect_law_is_fitted_within_compositions_and_bounded(served):
    law = served.model.baseline.load_law
    assert law is not None and law["log_p_star_slope"] >= 0
    low, high = HardnessConfig().p_star_bounds_n
    assert np.log(low) <= law["log_p_star_intercept"] <= np.log(high)
    assert law["min_load_n"] == 0.25  # the lowest load of a compound measured at several loads
    assert 0 < law["sigma_log_p_star"] < 2


def test_the_catalogue_phases_are_anchored_on_their_sourced_hv1(served):
    from features.phases import load_phase_hv1

    anchors = load_phase_hv1()
    rows = hardness.predict_formulas(served.model, list(anchors), load_n=9.8)
    for r in rows:
        assert r["lower"] <= anchors[r["formula"]][0] <= r["upper"], r


def test_intervals_widen_away_from_the_measured_loads(served):
    near, far = (hardness.predict_formulas(served.model, ["WB4"], load)[0] for load in (1.0, 100.0))
    assert (far["upper"] - far["lower"]) / far["value"] > (near["upper"] - near["lower"]) / near["value"]


def test_saved_and_loaded_through_the_store(served, bentoml_home):
    from model_registry import store

    tag = store.save(served, dataset_sha256="0" * 64)
    loaded = store.load("hardness", tag)
    X = np.vstack([served.model.range_low, served.model.range_high])
    assert np.allclose(loaded.predict(X).values, served.model.predict(X).values)
    card = store.card("hardness", tag)
    assert card["targets"] == ["vickers_hardness"] and card["units"] == {"vickers_hardness": "GPa"}
    domain = CompositionDomain.from_dict(card["domain"])
    assert "B" in domain.elements and domain.threshold > 0
