from model_registry import ood
from model_registry.train import TrainingConfig


def test_region_split_keeps_outside_rows_out_of_training(small_data):
    batch, _ = small_data
    inside = ood.inside_region(batch)
    train, cal, test_in, test_out = ood.region_split(inside, seed=0)
    assert inside[train].all() and inside[cal].all() and inside[test_in].all()
    assert not inside[test_out].any()
    assert len(set(train) | set(cal) | set(test_in) | set(test_out)) == len(batch)


def test_intervals_cover_outside_the_training_region():
    report = ood.run(6000, TrainingConfig(n_estimators=8, max_depth=12, importance_repeats=0))
    for family in report.values():
        for target, m in family.items():
            assert m["outside_coverage_95"] >= ood.REQUIRED_COVERAGE, (target, m)
