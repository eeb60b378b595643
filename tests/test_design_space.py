"""design/space.py: fractions that sum to 1, complete bodies the single route accepts, positions."""

from __future__ import annotations

import numpy as np
import pytest

from api.prediction.schemas import PredictionRequest
from design.space import ChoiceVariable, NumericVariable, Space, fractions

SPACE = Space(
    phases=("SiC", "B4C"),
    numeric=(NumericVariable("processing", "grain_size", 0.5, 50.0, log=True),),
    choices=(ChoiceVariable("processing", "atmosphere", ("argon", "vacuum")),),
    template={
        "composition": {},
        "processing": {"sintering_temperature": 1900, "grain_size": 10.0, "atmosphere": "argon"},
        "microstructure": {"porosity": 0.02},
        "include_uncertainty": True,
    },
)


@pytest.mark.parametrize("weights", [[1.0, 1.0, 1.0], [0.3333, 0.0, 0.9], [0.0, 0.0], [1e-9, 1.0]])
def test_fractions_sum_to_one_at_four_decimals(weights):
    shares = fractions(weights)
    assert sum(shares) == pytest.approx(1.0, abs=1e-9) and all(s >= 0 for s in shares)
    assert all(round(s, 4) == s for s in shares)


def test_a_body_is_complete_rounded_and_accepted_by_the_single_route():
    params = {
        "composition.SiC": 0.2,
        "composition.B4C": 0.0,
        "processing.grain_size": 3.14159265,
        "processing.atmosphere": "vacuum",
    }
    body = SPACE.body(params)
    assert body["composition"] == {"SiC": 1.0}
    assert body["processing"] == {"sintering_temperature": 1900, "grain_size": 3.1416, "atmosphere": "vacuum"}
    assert SPACE.template["processing"]["grain_size"] == 10.0  # the template is not changed
    PredictionRequest.model_validate(body)


def test_positions_are_in_the_unit_cube_log_scaled_where_sampled_so():
    body = SPACE.body(
        {"composition.SiC": 1, "composition.B4C": 1, "processing.grain_size": 5.0, "processing.atmosphere": "vacuum"}
    )
    assert SPACE.unit(body) == pytest.approx(np.array([0.5, 0.5, 0.5, 1.0]))
