"""api/transport/log_routes.py with the hooks of the flows: every answered prediction (single,
exact repeat, hardness, /batch rows) reaches the prediction log on a real SQLite file, and
GET /api/v1/predictions reads it back (filters, cursor, CSV, ADMIN_TOKEN)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from predlog.entry import api_key_id
from settings import AccessSettings
from tests.support import example

ROUTE = "/api/v1/predictions"
MATERIAL = {k: v for k, v in example().items() if k not in ("include_uncertainty", "include_feature_importance")}


def logged_client(make_core, tmp_path, access: AccessSettings = AccessSettings(), **overrides) -> TestClient:
    core = make_core(prediction_log=True, database_url=f"sqlite:///{tmp_path}/log.sqlite3", **overrides)
    test_client = TestClient(create_app(lambda: core, 65536, access=access))
    test_client.core = core
    return test_client


def other_material() -> dict:
    return {**example(), "microstructure": {**example()["microstructure"], "porosity": 0.04}}


@pytest.fixture
def logged(make_core, tmp_path):
    with logged_client(make_core, tmp_path) as http:
        yield http


def test_every_kind_of_answer_is_logged_with_its_model_values_and_cache_state(logged):
    assert logged.post("/api/v1/predict/mechanical", json=example()).status_code == 200
    assert logged.post("/api/v1/predict/mechanical", json=example()).json()["cached"] is True  # an exact repeat
    assert logged.post("/api/v1/predict/hardness", json={"formula": "B4C", "load_n": [0.49, 9.8]}).status_code == 200
    batch = logged.post("/api/v1/predict/ballistic/batch", json={"materials": [MATERIAL, {"composition": {"SiC": 2}}]})
    assert batch.status_code == 200
    rows = logged.get(ROUTE).json()["predictions"]
    assert [(r["family"], r["kind"], r["cached"]) for r in rows] == [
        ("ballistic", "batch", False),  # the invalid batch row is not logged
        ("hardness", "single", False),
        ("mechanical", "single", True),
        ("mechanical", "single", False),
    ]
    ballistic, hardness, repeat, first = rows
    assert repeat["material"] == first["material"] and repeat["material_key"] == first["material_key"]
    assert first["material"]["composition"] == {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1}
    assert first["model_tag"].startswith("armor_mechanical:") and ballistic["model_tag"].startswith("armor_ballistic:")
    value, lower, upper = first["outputs"]["density"]
    assert lower < value < upper
    assert set(hardness["outputs"]) == {"vickers_hardness@0.49 N", "vickers_hardness@9.8 N"}
    assert hardness["material"] == {"formula": "B0.8C0.2", "loads": [0.49, 9.8]}  # the canonical formula
    assert first["latency_ms"] > 0 and ballistic["latency_ms"] is None and first["api_key_id"] is None


def test_filters_and_the_cursor_walk_the_log(logged):
    for body in (example(), other_material(), example() | {"include_uncertainty": False}):
        logged.post("/api/v1/predict/mechanical", json=body)
    logged.post("/api/v1/predict/hardness", json={"formula": "SiC"})
    everything = logged.get(ROUTE).json()["predictions"]
    walked, cursor = [], None
    while True:
        page = logged.get(ROUTE, params={"limit": 3} | ({"cursor": cursor} if cursor else {})).json()
        walked += page["predictions"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r["id"] for r in walked] == [r["id"] for r in everything] and len(everything) == 4
    key = everything[-1]["material_key"]
    same = logged.get(ROUTE, params={"material_key": key}).json()["predictions"]
    assert len(same) == 2  # the example twice (with and without intervals), the same material
    assert len(logged.get(ROUTE, params={"family": "hardness"}).json()["predictions"]) == 1
    assert logged.get(ROUTE, params={"since": "2999-01-01T00:00:00Z"}).json() == {
        "predictions": [],
        "next_cursor": None,
    }
    assert len(logged.get(ROUTE, params={"until": "2999-01-01", "since": 0}).json()["predictions"]) == 4


def test_the_log_as_csv(logged):
    logged.post("/api/v1/predict/hardness", json={"formula": "SiC"})
    response = logged.get(ROUTE, params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(response.text)))
    assert (
        row["family"] == "hardness" and row["cached"] == "false" and json.loads(row["material"])["loads"] == [9.8]
    )  # the default load
    assert logged.get(ROUTE, headers={"Accept": "text/csv"}).text.startswith("id,time,family,kind")


def test_bad_parameters_are_422_naming_them(logged):
    for params, field in (({"limit": 0}, "limit"), ({"since": "yesterday"}, "since"), ({"famly": "x"}, "famly")):
        response = logged.get(ROUTE, params=params)
        assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == field


def test_the_log_is_for_the_admin_token_when_set(make_core, tmp_path):
    with logged_client(make_core, tmp_path, admin_token="s3cret") as http:
        assert http.get(ROUTE).status_code == 401
        assert http.get(ROUTE, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_api_key_is_logged_by_its_id_never_itself(make_core, tmp_path):
    with logged_client(make_core, tmp_path, AccessSettings(frozenset({"key-one"}))) as http:
        http.post("/api/v1/predict/hardness", json={"formula": "SiC"}, headers={"X-API-Key": "key-one"})
        response = http.get(ROUTE)
    assert response.json()["predictions"][0]["api_key_id"] == api_key_id(b"key-one")
    assert "key-one" not in response.text


def test_with_the_log_off_the_route_is_404(client):
    assert client.get(ROUTE).status_code == 404


def test_a_database_that_is_down_costs_no_request_and_its_rows_are_counted(make_core, tmp_path):
    """The log's directory is a regular file: nothing can be written or read."""
    (tmp_path / "blocked").write_text("a file where the database's directory should be")
    core = make_core(prediction_log=True, database_url=f"sqlite:///{tmp_path}/blocked/log.sqlite3")
    with TestClient(create_app(lambda: core, 65536)) as http:
        answers = [http.post("/api/v1/predict/hardness", json={"formula": f}).status_code for f in ("SiC", "B4C")]
        read = http.get(ROUTE)
        figures = http.get("/api/v1/performance").json()["prediction_log"]
    assert answers == [200, 200] and read.status_code == 503
    assert figures["dropped_total"]["database"] == 2 and figures["written_total"] == 0
    assert figures["last_error"] is not None
