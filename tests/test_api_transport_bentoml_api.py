"""BentoML's own endpoints answer what /api/v1/predict/... answers, through the same flow."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

import pytest

from api.prediction.schemas import HardnessRequest, PredictionRequest
from api.transport.bentoml_api import FlowFailure, hardness_answer, material_answer, typed_models
from tests.support import example


@pytest.mark.parametrize("family", ["mechanical", "ballistic"])
def test_material_answer_equals_the_route(client, family):
    body = example()
    route = client.post(f"/api/v1/predict/{family}", json=body).json()
    typed = asyncio.run(material_answer(client.core, family, PredictionRequest.model_validate(body)))
    assert typed.predictions.keys() == route["predictions"].keys()
    for target, entry in typed.predictions.items():
        assert entry.value == route["predictions"][target]["value"]
        assert entry.confidence_interval == route["predictions"][target]["confidence_interval"]
    assert typed.model_info.version == route["model_info"]["version"]


def test_hardness_answer_equals_the_route(client):
    body = {"formula": "TiB2", "load_n": [0.98, 9.8]}
    route = client.post("/api/v1/predict/hardness", json=body).json()
    typed = asyncio.run(hardness_answer(client.core, HardnessRequest.model_validate(body)))
    assert [p.vickers_hardness.value for p in typed.predictions] == [
        p["vickers_hardness"]["value"] for p in route["predictions"]
    ]


def test_rendered_answer_leaves_out_nulls(client):
    """BentoML's clients cannot decode a null where the schema says array (see _WithoutNulls)."""
    typed = asyncio.run(hardness_answer(client.core, HardnessRequest.model_validate({"formula": "B4C"})))
    assert typed.feature_importance is None
    assert "feature_importance" not in typed.model_dump_json()
    assert "null" not in typed.model_dump_json()


def test_unknown_version_keeps_its_status(client):
    request = PredictionRequest.model_validate(example() | {"model_version": "armor_mechanical:doesnotexist"})
    with pytest.raises(FlowFailure) as caught:
        asyncio.run(material_answer(client.core, "mechanical", request))
    assert caught.value.error_code == HTTPStatus.NOT_FOUND
    assert "doesnotexist" in caught.value.message


def test_models_names_the_serving_tag_of_every_family(client):
    serving = asyncio.run(typed_models(client.core))
    assert set(serving) == {"mechanical", "ballistic", "hardness"}
    assert all(entry["serving"].startswith(f"armor_{family}:") for family, entry in serving.items())


def test_batch_answer_equals_the_route_with_row_errors_and_screening(client):
    from api.prediction.schemas import BatchRequest
    from api.transport.bentoml_api import batch_answer

    material = {k: v for k, v in example().items() if k in ("composition", "processing", "microstructure")}
    body = {"materials": [material, {"composition": {"SiC": 2.0}}, material], "rank_by": "density", "top": 5}
    route = client.post("/api/v1/predict/mechanical/batch", json=body).json()
    typed = asyncio.run(batch_answer(client.core, "mechanical", BatchRequest.model_validate(body)))
    assert typed.model_dump(mode="json", exclude_none=True)["results"] == [
        {k: v for k, v in row.items() if v is not None} for row in route["results"]
    ]
    assert typed.summary.errors == route["summary"]["errors"] == 1


def test_batch_over_the_row_limit_keeps_its_413(make_core):
    from api.prediction.schemas import BatchRequest
    from api.transport.bentoml_api import batch_answer

    core = make_core(max_batch_rows=2)
    request = BatchRequest.model_validate({"materials": [{"composition": {"SiC": 1.0}}] * 3})
    with pytest.raises(FlowFailure) as caught:
        asyncio.run(batch_answer(core, "mechanical", request))
    assert caught.value.error_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_with_an_admin_token_an_unknown_version_lists_no_stored_ones(make_core):
    core = make_core(admin_token="secret")
    request = PredictionRequest.model_validate(example() | {"model_version": "armor_mechanical:doesnotexist"})
    with pytest.raises(FlowFailure) as caught:
        asyncio.run(material_answer(core, "mechanical", request))
    assert caught.value.error_code == HTTPStatus.NOT_FOUND
    assert "armor_mechanical:" not in caught.value.message.replace("armor_mechanical:doesnotexist", "")
