"""The sweep and the out-of-distribution check on the small models: the same checks `make science`
runs on the reference models."""

import numpy as np

from model_registry import sweep


def test_check_curve_counts_sign_violations_and_flat_segments():
    assert sweep.check_curve(np.array([3.0, 2.0, 1.0]), trend=-1) == (0, 0)
    assert sweep.check_curve(np.array([3.0, 2.0, 2.5]), trend=-1) == (1, 0)
    assert sweep.check_curve(np.array([3.0, 2.0, 2.0, 2.0, 2.0, 1.0]), trend=-1) == (0, 1)
    assert sweep.check_curve(np.array([3.0, 2.0, 2.0, 2.0, 1.0]), trend=-1) == (0, 0)  # two still steps: not a segment


def test_small_models_have_no_sign_violation_no_flat_segment_and_exact_density(trained):
    report = sweep.run({family: t.model for family, t in trained.items()})
    assert report["findings"] == []
    assert all(s["curves_checked"] > 40 for s in report["families"].values())
    assert report["density"]["max_relative_error"] < 0.01
    assert report["density"]["inside_interval"] == 1.0
    assert not sweep.failed(report)
