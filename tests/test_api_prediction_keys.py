"""api/prediction/keys.py: a cache key means the same answer."""

from __future__ import annotations

import json

from api.prediction import keys
from api.prediction.schemas import PredictionRequest
from tests.support import example, request


def key(req: PredictionRequest, family: str = "mechanical", tag: str = "armor_mechanical:v1") -> str:
    return keys.response_key(family, keys.canonical_material(req, family), tag, req)


def test_same_meaning_same_key():
    reordered = json.loads(json.dumps(example(), sort_keys=True))
    reordered["composition"] = dict(reversed(list(example()["composition"].items())))
    explicit_defaults = {**example(), "armor": {"tile_thickness": 10.0, "threat": "7.62x51_m80"}}
    trailing_zero = {**example(), "composition": {"SiC": 0.60, "B4C": 0.30, "Al2O3": 0.10}}
    base = key(request())
    assert key(PredictionRequest.model_validate(reordered)) == base
    assert key(PredictionRequest.model_validate(explicit_defaults), "ballistic") == key(request(), "ballistic")
    assert key(PredictionRequest.model_validate(trailing_zero)) == base


def test_weight_basis_equals_its_volume_equivalent():
    weight = request(composition={"WC": 0.5, "SiC": 0.5, "basis": "weight"})
    material = keys.canonical_material(weight, "mechanical")
    volume = request(composition={p: v for p, v in material["composition"].items()})
    assert key(weight) == key(volume)


def test_different_meaning_different_key():
    base = key(request())
    assert key(request(processing={**example()["processing"], "sintering_temperature": 1801})) != base
    assert key(request(include_uncertainty=False)) != base
    assert key(request(), tag="armor_mechanical:v2") != base  # a new model never serves an old answer
    assert key(request(), family="ballistic") != base
    assert key(request(armor={"tile_thickness": 12}), "ballistic") != key(request(), "ballistic")


def test_mechanical_key_ignores_armor_block():
    assert key(request(armor={"tile_thickness": 12})) == key(request())
