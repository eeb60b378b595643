"""design/explore.py: diverse picks, and the explore strategy through POST /api/v1/design."""

from __future__ import annotations

import itertools

import numpy as np

from design.explore import ACQUISITION, MIN_DISTANCE, diverse
from design.spec import DesignRequest, problem
from settings import DesignSettings
from tests.test_api_design_routes import SPEC, design


def test_near_copies_are_passed_over():
    positions = np.array([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [0.5, 0.5]])
    assert diverse(positions, 3) == [0, 2, 3]


def test_too_few_distinct_candidates_are_completed_by_the_farthest():
    positions = np.array([[0.0, 0.0], [0.01, 0.0], [0.02, 0.0], [0.0, 0.05]])
    assert diverse(positions, 3) == [0, 3, 2]
    assert diverse(positions, 9) == [0, 3, 2, 1]


def test_explore_returns_k_diverse_feasible_suggestions_with_their_acquisition(client):
    spec = {**SPEC, "strategy": "explore", "suggestions": 4, "max_evaluations": 128}
    body = design(client, spec).json()
    suggestions = body["suggestions"]
    assert len(suggestions) == 4 and body["front"]
    space = problem(DesignRequest.model_validate(spec), DesignSettings()).space
    positions = [space.unit(s["request"]) for s in suggestions]
    for a, b in itertools.combinations(positions, 2):
        assert np.linalg.norm(a - b) / np.sqrt(len(a)) >= MIN_DISTANCE
    for s in suggestions:
        assert s["acquisition"]["kind"] == ACQUISITION and s["acquisition"]["value"] >= 0
        assert s["predictions"]["density"]["confidence_interval"][1] <= 3.3  # the constraint
        optimistic = s["acquisition"]["optimistic"]
        assert optimistic["v50_velocity_low"] == s["predictions"]["v50_velocity"]["confidence_interval"][1]
        assert optimistic["density"] == s["predictions"]["density"]["confidence_interval"][0]
        mechanical = client.post("/api/v1/predict/mechanical", json=s["request"]).json()
        ballistic = client.post("/api/v1/predict/ballistic", json=s["request"]).json()
        assert s["predictions"] == mechanical["predictions"] | ballistic["predictions"]
        assert s["build"] == ballistic["build"]
    values = [s["acquisition"]["value"] for s in suggestions]
    assert values[0] == max(values) > 0
