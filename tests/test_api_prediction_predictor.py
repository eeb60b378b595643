"""api/prediction/predictor.py: one runner call per batch of rows, packed with the answering model."""

import asyncio

import numpy as np

from api.prediction.predictor import AsyncPredictor
from runners.contract import tag_id, unpack
from tests.support import CountingRunner


def test_packed_rows_carry_the_answering_model(runner_cores, stored_tags):
    predictor = AsyncPredictor({"ballistic": CountingRunner(runner_cores["ballistic"], delay_s=0)})
    features = np.zeros((1, runner_cores["ballistic"].n_features))
    packed = asyncio.run(predictor.predict("ballistic", features, None, explain=False))
    assert packed.shape == (1, 1 + 4 * 4) and predictor.calls == 1
    assert unpack(packed, 4, features.shape[1]).tag_id[0] == tag_id(stored_tags["ballistic"])
