"""The prediction routes in-process (FastAPI TestClient over a ServiceCore with in-process runners)."""

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from model_registry import store
from tests.support import CountingRunner

EXAMPLE = json.loads((Path(__file__).parent / "testdata" / "example_request.json").read_text())
MECHANICAL = {
    "density",
    "vickers_hardness",
    "fracture_toughness",
    "elastic_modulus",
    "flexural_strength",
    "compressive_strength",
    "poisson_ratio",
}
BALLISTIC = {"v50_velocity", "penetration_resistance", "back_face_deformation", "multi_hit_capability"}


@pytest.mark.parametrize("family, targets", [("mechanical", MECHANICAL), ("ballistic", BALLISTIC)])
def test_example_returns_every_property_with_interval(client, family, targets):
    response = client.post(f"/api/v1/predict/{family}", json=EXAMPLE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["predictions"]) == targets
    for entry in body["predictions"].values():
        low, high = entry["confidence_interval"]
        assert low <= entry["value"] <= high
        assert entry["uncertainty"] == pytest.approx((high - low) / 2 / abs(entry["value"]))
        assert entry["prediction_quality"] in ("excellent", "good", "fair", "poor")
        assert entry["unit"]
    assert body["cached"] is False and len(body["request_id"]) == 32 and body["processing_time_ms"] > 0


def test_contributions_sum_with_base_to_each_value(client):
    body = client.post("/api/v1/predict/mechanical", json=EXAMPLE).json()
    for target, entry in body["predictions"].items():
        total = body["contribution_base"][target] + sum(f["contribution"][target] for f in body["feature_importance"])
        assert total == pytest.approx(entry["value"], rel=1e-9, abs=1e-9)
    importance = [f["importance"] for f in body["feature_importance"]]
    assert importance == sorted(importance, reverse=True) and all(0 <= i <= 1 for i in importance)
    assert {f["category"] for f in body["feature_importance"]} <= {
        "composition",
        "processing",
        "microstructure",
        "derived",
    }


def test_without_uncertainty_interval_fields_are_null(client):
    body = client.post("/api/v1/predict/ballistic", json={**EXAMPLE, "include_uncertainty": False}).json()
    for entry in body["predictions"].values():
        assert entry["confidence_interval"] is None and entry["uncertainty"] is None
        assert entry["prediction_quality"] is None
    assert body["feature_importance"] is not None


def test_model_info_comes_from_the_registry(client, stored_tags):
    body = client.post("/api/v1/predict/mechanical", json=EXAMPLE).json()
    meta = store.resolve("mechanical", stored_tags["mechanical"]).info.metadata
    info = body["model_info"]
    assert f"{info['name']}:{info['version']}" == stored_tags["mechanical"]
    assert info["training_samples"] == meta["samples"]["training"]
    assert info["metrics"] == meta["metrics"] and info["trained_at"] == meta["created_at"]


def test_out_of_range_and_unusual_inputs_are_flagged_not_refused(client, stored_tags):
    # The reference data cover the whole accepted domain; a model trained on narrower (measured)
    # data has narrower ranges in its card: narrow them here the same way.
    cards = client.core.flow.cards
    card = asyncio.run(cards.default("ballistic"))
    narrowed = card.feature_ranges | {"sintering_temperature": [1300.0, 2200.0], "tile_thickness": [5.0, 15.0]}
    cards._default["ballistic"] = dataclasses.replace(card, feature_ranges=narrowed)
    body = {
        "composition": {"SiC": 0.82, "B4C": 0.18},
        "processing": {"sintering_temperature": 2490},
        "armor": {"tile_thickness": 45},
    }
    response = client.post("/api/v1/predict/ballistic", json=body)
    assert response.status_code == 200
    warnings = response.json()["warnings"]
    assert any(w.startswith("sintering_temperature = 2490 degC is outside the training data's range") for w in warnings)
    assert any(w.startswith("tile_thickness = 45 mm is outside") for w in warnings)
    assert "unusual combination: more than 80 % SiC with more than 15 % B4C" in warnings


def test_weight_basis_changes_the_prediction(client):
    volume = {**EXAMPLE, "composition": {"WC": 0.5, "SiC": 0.5}}
    weight = {**EXAMPLE, "composition": {"WC": 0.5, "SiC": 0.5, "basis": "weight"}}
    dv = client.post("/api/v1/predict/mechanical", json=volume).json()["predictions"]["density"]["value"]
    dw = client.post("/api/v1/predict/mechanical", json=weight).json()["predictions"]["density"]["value"]
    assert dw < dv  # half the mass as WC is far less than half the volume


def test_pinned_older_version_answers_with_that_version(client, trained, stored_tags):
    newer = store.save(trained["mechanical"], dataset_sha256="1" * 64)
    try:
        pinned = client.post("/api/v1/predict/mechanical", json={**EXAMPLE, "model_version": stored_tags["mechanical"]})
        by_version = client.post("/api/v1/predict/mechanical", json={**EXAMPLE, "model_version": newer.split(":")[1]})
        assert pinned.status_code == by_version.status_code == 200
        assert pinned.json()["model_info"]["version"] == stored_tags["mechanical"].split(":")[1]
        assert by_version.json()["model_info"]["version"] == newer.split(":")[1]
    finally:
        import bentoml

        bentoml.models.delete(newer)


def test_health_routes(client):
    for path in ("/health", "/api/v1/health"):
        body = client.get(path).json()
        assert body["status"] == "ok" and body["version"]


def test_logs_are_json_lines_carrying_the_request_id(make_core, caplog_json):
    from fastapi.testclient import TestClient

    from api.app import create_app

    core = make_core(access_log=True)
    with TestClient(create_app(lambda: core, 65536, access_log=True)) as http:
        body = http.post("/api/v1/predict/mechanical", json=EXAMPLE).json()
    lines = [json.loads(line) for line in caplog_json.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "armor.access"]
    assert access and access[-1]["request_id"] == body["request_id"]
    assert access[-1]["status"] == 200 and access[-1]["path"] == "/api/v1/predict/mechanical"


def test_runner_unavailable_is_503_with_retry_after(make_core, runner_cores):
    import aiohttp
    from fastapi.testclient import TestClient

    from api.app import create_app

    real = CountingRunner(runner_cores["mechanical"], delay_s=0)

    class Down:
        async def predict(self, rows, version, kind):
            raise aiohttp.ClientConnectionError("connection refused")

        async def card(self, version=None):
            return await real.card(version)

    core = make_core(runners={"mechanical": Down()})
    with TestClient(create_app(lambda: core, 65536)) as http:
        response = http.post("/api/v1/predict/mechanical", json=EXAMPLE)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["type"] == "unavailable"


def test_domain_check_uses_volume_fractions_for_weight_requests(client):
    # 85 wt% SiC + 15 wt% B4C is about 82 vol% SiC + 18 vol% B4C: flagged
    body = {"composition": {"SiC": 0.85, "B4C": 0.15, "basis": "weight"}, "processing": {"sintering_temperature": 2100}}
    warnings = client.post("/api/v1/predict/mechanical", json=body).json()["warnings"]
    assert "unusual combination: more than 80 % SiC with more than 15 % B4C" in warnings


def test_porous_alumina_density_follows_rule_of_mixtures_with_the_physical_value_inside(client):
    body = {
        "composition": {"Al2O3": 1.0},
        "processing": {"sintering_temperature": 1600},
        "microstructure": {"porosity": 0.3},
    }
    entry = client.post("/api/v1/predict/mechanical", json=body).json()["predictions"]["density"]
    physical = 3.984 * (1 - 0.3)  # alpha-Al2O3 theoretical density, NIST SRD 150 (features/data/phases.json)
    assert entry["value"] == pytest.approx(physical, rel=0.01)
    low, high = entry["confidence_interval"]
    assert low <= physical <= high


@pytest.mark.parametrize(
    "armor, expected",
    [
        ({"tile_thickness": 3, "backing_thickness": 2}, "perforation expected"),
        ({"tile_thickness": 50, "backing": "aluminum_7075_t6", "backing_thickness": 50}, "overmatches this threat"),
    ],
)
def test_v50_says_what_it_means_against_the_threat(client, armor, expected):
    body = {"composition": {"B4C": 1.0}, "processing": {"sintering_temperature": 2100}, "armor": armor}
    warnings = client.post("/api/v1/predict/ballistic", json=body).json()["warnings"]
    assert any(expected in w for w in warnings), warnings


def test_a_ballistic_answer_carries_the_builds_areal_density_and_v50_margin(client):
    armor = {"tile_thickness": 10, "backing": "aluminum_6061_t6", "backing_thickness": 10, "threat": "30-06_m2ap"}
    body = {
        "composition": {"SiC": 1.0},
        "processing": {"sintering_temperature": 2100},
        "microstructure": {"porosity": 0.1},
        "armor": armor,
    }
    answer = client.post("/api/v1/predict/ballistic", json=body).json()
    areal, margin = answer["build"]["areal_density"], answer["build"]["v50_margin"]
    # SiC's theoretical density (features/data/phases.json) at 10 % porosity, Al 6061-T6 2.70 g/cm3 (armor.json)
    from features.phases import PHASES, load_phase_table

    sic = float(load_phase_table().density[PHASES.index("SiC")])
    assert areal == {
        "value": pytest.approx(sic * 0.9 * 10 + 27.0),
        "unit": "kg/m2",
        "tile": pytest.approx(sic * 0.9 * 10),
        "backing": 27.0,
    }
    v50 = answer["predictions"]["v50_velocity"]
    assert margin["reference_velocity"] == 878 and margin["threat"] == "30-06_m2ap" and margin["unit"] == "m/s"
    assert margin["value"] == pytest.approx(v50["value"] - 878)
    assert margin["confidence_interval"] == pytest.approx([v - 878 for v in v50["confidence_interval"]])
    assert "build" not in client.post("/api/v1/predict/mechanical", json=body).json()


def test_ballistic_on_a_backing_outside_the_v50_relation_is_refused_naming_the_field(client):
    body = {
        "composition": {"B4C": 1.0},
        "processing": {"sintering_temperature": 2100},
        "armor": {"tile_thickness": 9, "backing": "uhmwpe_laminate", "backing_thickness": 12, "threat": "30-06_m2ap"},
    }
    response = client.post("/api/v1/predict/ballistic", json=body)
    assert response.status_code == 422
    detail = response.json()["error"]["details"][0]
    assert detail["field"] == "armor.backing" and "aluminum_6061_t6" in detail["message"]
    assert client.post("/api/v1/predict/mechanical", json=body).status_code == 200  # armor unused there


@pytest.mark.parametrize(
    "version", ["../../etc/passwd", "armor_mechanical:../x", "", "armor_mechanical:", "x" * 300, "ü"]
)
def test_malformed_model_version_is_a_422_naming_the_field_not_a_503(client, version):
    response = client.post("/api/v1/predict/mechanical", json={**EXAMPLE, "model_version": version})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "model_version"


def test_an_answer_is_labelled_with_the_model_that_gave_it(client, trained, stored_tags):
    # The API last saw another default (as after a runner restart on another model): the runner's
    # answer carries its own tag, and the response must name that model, not the remembered one.
    other = store.save(trained["mechanical"], dataset_sha256="2" * 64)
    cards = client.core.flow.cards
    cards._default["mechanical"] = asyncio.run(cards.version("mechanical", other))
    info = client.post("/api/v1/predict/mechanical", json=EXAMPLE).json()["model_info"]
    assert f"{info['name']}:{info['version']}" == stored_tags["mechanical"]
    assert asyncio.run(cards.default("mechanical")).tag == stored_tags["mechanical"]


def test_unknown_versions_are_refused_from_memory_without_a_runner_call(client):
    calls = []
    runner = client.core.predictor.runners["mechanical"]
    original = runner.card

    async def counted(version=None):
        calls.append(version)
        return await original(version)

    runner.card = counted
    try:
        statuses = [
            client.post("/api/v1/predict/mechanical", json={**EXAMPLE, "model_version": "nope"}).status_code
            for _ in range(20)
        ]
    finally:
        runner.card = original
    assert statuses == [404] * 20 and calls == ["nope"]


def test_admin_token_hides_details_of_status_and_models_from_everyone_else(make_core):
    from fastapi.testclient import TestClient

    from api.app import create_app

    core = make_core(admin_token="s3cret")
    with TestClient(create_app(lambda: core, 65536)) as http:
        anonymous = http.get("/api/v1/status").json(), http.get("/api/v1/models").json()
        wrong = http.get("/api/v1/status", headers={"Authorization": "Bearer nope"}).json()
        admin = [
            http.get(p, headers={"Authorization": "Bearer s3cret"}).json() for p in ("/api/v1/status", "/api/v1/models")
        ]
    assert set(anonymous[0]) == {"status", "uptime_s", "cache"} and set(wrong) == set(anonymous[0])
    assert set(anonymous[1]["mechanical"]) == {"serving"}
    assert "resources" in admin[0] and "versions" in admin[0]
    assert "versions" in admin[1]["mechanical"]


def test_without_admin_token_status_keeps_its_details(client):
    assert "resources" in client.get("/api/v1/status").json()


def test_a_pinned_version_is_answered_by_that_model_even_when_the_default_moved(client, trained, stored_tags):
    # The API believes the pinned version is the default (so it would use the batching route),
    # but the runner's default is another model: the pinned answer must still come from the pin.
    pinned = store.save(trained["mechanical"], dataset_sha256="4" * 64)
    cards = client.core.flow.cards
    cards._default["mechanical"] = asyncio.run(cards.version("mechanical", pinned))
    body = {**EXAMPLE, "model_version": pinned.split(":")[1], "microstructure": {"porosity": 0.031}}
    info = client.post("/api/v1/predict/mechanical", json=body).json()["model_info"]
    assert f"{info['name']}:{info['version']}" == pinned


def test_catalogue_route_gives_the_catalogue_and_the_request_limits(client):
    from api.prediction.schemas import MAX_LOADS
    from features.describe import document

    answer = client.get("/api/v1/catalogue")
    assert answer.status_code == 200
    assert answer.json() == document() | {"limits": {"max_batch_rows": 10_000, "max_loads": MAX_LOADS}}


def test_the_clients_request_id_comes_back_in_the_header_and_every_body(client):
    sent = {"X-Request-ID": "order-4711"}
    ok = client.post("/api/v1/predict/mechanical", json=EXAMPLE, headers=sent)
    invalid = client.post("/api/v1/predict/mechanical", json={"composition": {"SiC": 2}}, headers=sent)
    malformed = client.post("/api/v1/predict/mechanical", content=b"{", headers=sent)
    missing = client.get("/api/v1/nowhere", headers=sent)
    batch = client.post("/api/v1/predict/mechanical/batch", json={"materials": [EXAMPLE]}, headers=sent)
    health = client.get("/health", headers=sent)
    answers = [ok, invalid, malformed, missing, batch, health]
    assert [a.status_code for a in answers] == [200, 422, 400, 404, 200, 200]
    assert {a.headers["x-request-id"] for a in answers} == {"order-4711"}
    assert [a.json()["request_id"] for a in (ok, invalid, malformed, missing)] == ["order-4711"] * 4
    assert batch.json()["summary"]["request_id"] == "order-4711"


def test_an_unacceptable_request_id_is_replaced_in_header_and_body(client):
    response = client.post("/api/v1/predict/mechanical", json=EXAMPLE, headers={"X-Request-ID": "x" * 129})
    made = response.headers["x-request-id"]
    assert made != "x" * 129 and response.json()["request_id"] == made


def test_access_line_for_422_batch_and_get_routes(make_core, caplog_json):
    from fastapi.testclient import TestClient

    from api.app import create_app

    core = make_core()
    with TestClient(create_app(lambda: core, 65536, access_log=True)) as http:
        http.post("/api/v1/predict/mechanical", json={"composition": {"SiC": 2}}, headers={"X-Request-ID": "r1"})
        http.post("/api/v1/predict/mechanical/batch", json={"materials": [EXAMPLE]}, headers={"X-Request-ID": "r2"})
        http.get("/api/v1/catalogue", headers={"X-Request-ID": "r3"})
    lines = [json.loads(line) for line in caplog_json.getvalue().splitlines()]
    access = [(line["request_id"], line["path"], line["status"]) for line in lines if line["logger"] == "armor.access"]
    assert access == [
        ("r1", "/api/v1/predict/mechanical", 422),
        ("r2", "/api/v1/predict/mechanical/batch", 200),
        ("r3", "/api/v1/catalogue", 200),
    ]
