"""POST /api/v1/predict/hardness in-process: the route's contract, its errors, its cache key."""

from __future__ import annotations

import numpy as np
import pytest

from features.indentation import psr_factor

ROUTE = "/api/v1/predict/hardness"


def test_several_loads_give_one_prediction_each_in_order_with_the_load_dependence(client):
    response = client.post(ROUTE, json={"formula": "B4C", "load_n": [0.49, 9.8, 49.0]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["load_n"] for p in body["predictions"]] == [0.49, 9.8, 49.0]
    for entry in body["predictions"]:
        hv = entry["vickers_hardness"]
        low, high = hv["confidence_interval"]
        assert hv["unit"] == "GPa" and low < hv["value"] < high
    assert body["composition"] == pytest.approx({"B": 0.8, "C": 0.2})
    values = [p["vickers_hardness"]["value"] for p in body["predictions"]]
    assert values[0] > values[-1] and body["load_dependence"]["exponent"] < 0  # indentation size effect
    law = body["load_dependence"]
    assert law["characteristic_load_n"] > 0
    # the size effect fades towards H0: every value is above it, the highest load closest to it
    assert all(v > law["load_independent_gpa"] for v in values)
    assert values[-1] - law["load_independent_gpa"] < values[0] - values[-1]
    assert body["model_info"]["name"] == "armor_hardness" and body["cached"] is False


def test_below_the_lowest_fitted_load_the_hardness_is_the_plateau_the_answer_reports(client):
    body = client.post(ROUTE, json={"formula": "SiC", "load_n": [0.01, 0.1, 0.49, 9.8]}).json()
    law, values = body["load_dependence"], [p["vickers_hardness"]["value"] for p in body["predictions"]]
    assert law["plateau_load_n"] > 0.1
    assert values[:2] == pytest.approx([law["plateau_gpa"]] * 2, rel=1e-9)
    assert values[2] < law["plateau_gpa"]
    g = psr_factor(np.array([law["plateau_load_n"]]), np.array([law["characteristic_load_n"]]))[0]
    assert law["plateau_gpa"] == pytest.approx(law["load_independent_gpa"] * g, rel=1e-9)


def test_one_load_is_the_default_and_has_no_load_dependence(client):
    body = client.post(ROUTE, json={"formula": "SiC"}).json()
    assert [p["load_n"] for p in body["predictions"]] == [9.8] and body["load_dependence"] is None


def test_the_same_compound_written_another_way_is_a_cache_hit(client):
    first = client.post(ROUTE, json={"formula": "TiB2", "load_n": 4.9}).json()
    second = client.post(ROUTE, json={"formula": "B2Ti", "load_n": 4.9}).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["predictions"] == first["predictions"]


@pytest.mark.parametrize(
    "formula, reason",
    [
        ("Xx2O3", "unknown_element"),
        ("Ti(C0.5N0.5", "unbalanced_parentheses"),
        ("B4C!", "unexpected_character"),
        ("He", "element_without_data"),
        ("   ", "empty"),
    ],
)
def test_a_formula_the_service_cannot_read_is_a_422_naming_the_field(client, formula, reason):
    response = client.post(ROUTE, json={"formula": formula})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert error["details"][0]["field"] == "formula" and error["details"][0]["reason"] == reason


@pytest.mark.parametrize("load", ["9.8", True, 0.0001, 1000, [], [9.8] * 21])
def test_a_bad_load_is_a_422_naming_the_field(client, load):
    response = client.post(ROUTE, json={"formula": "SiC", "load_n": load})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "load_n"


def test_unknown_fields_and_missing_formula_are_422(client):
    unknown = client.post(ROUTE, json={"formula": "SiC", "temperature": 20})
    assert unknown.status_code == 422
    # the hardness route's own fields are named (the family's request model), not a material's
    message = unknown.json()["error"]["details"][0]["message"]
    assert "load_n" in message and "composition" not in message
    missing = client.post(ROUTE, json={"load_n": 9.8})
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["field"] == "formula"


def test_elements_outside_the_measured_data_are_flagged_not_refused(client):
    body = client.post(ROUTE, json={"formula": "Pu2O3"}).json()
    assert any("not in the measured training data" in w for w in body["warnings"])
    assert body["predictions"][0]["vickers_hardness"]["prediction_quality"] is not None


def test_feature_importance_on_request(client):
    body = client.post(ROUTE, json={"formula": "WC", "include_feature_importance": True}).json()
    names = {row["name"] for row in body["feature_importance"]}
    assert {"load_n", "log_load"} <= names
    base = body["contribution_base"]["vickers_hardness"]
    total = base + sum(row["contribution"]["vickers_hardness"] for row in body["feature_importance"])
    assert total == pytest.approx(body["predictions"][0]["vickers_hardness"]["value"], rel=1e-6)


def test_the_route_is_in_the_openapi_document(client):
    from api.app import create_app

    schema = create_app(lambda: client.core, 65536).openapi()
    route = schema["paths"][ROUTE]["post"]
    assert set(route["responses"]) >= {"200", "400", "404", "413", "422", "503"}
