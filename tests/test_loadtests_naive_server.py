"""The naive baseline of the side-by-side benchmark answers the bodies wrk sends (a small forest
fitted on the first rows of the reference table, in a temporary cache folder)."""

import math
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from features.catalogue import MECHANICAL_TARGETS
from loadtests import naive_server
from loadtests.naive_server import ROUTE, build_app

LOADTESTS = Path(__file__).resolve().parent.parent / "loadtests"
ROWS, TREES = 400, 5  # the first rows of the reference table, a few trees: under a second


def wrk_body(script: str) -> str:
    """The JSON body a wrk script sends, its format fields (grain size, porosity) filled in."""
    body = re.search(r"\[\[(.*?)\]\]", (LOADTESTS / script).read_text(), re.S).group(1)  # type: ignore[union-attr]
    return body.replace("%.4f", "12.5000").replace("%.5f", "0.03000")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("naive-forest")


@pytest.fixture(scope="module")
def client(cache_dir: Path) -> TestClient:
    return TestClient(build_app(rows=ROWS, trees=TREES, cache_dir=cache_dir))


@pytest.mark.parametrize("script", ["wrk_new_material.lua", "wrk_post.lua", "wrk_mixed.lua"])
def test_wrk_bodies_get_every_mechanical_target(client: TestClient, script: str) -> None:
    response = client.post(ROUTE, content=wrk_body(script), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert list(predictions) == list(MECHANICAL_TARGETS)
    assert all(math.isfinite(entry["value"]) and entry["value"] > 0 for entry in predictions.values())


def test_missing_required_input_is_refused(client: TestClient) -> None:
    response = client.post(ROUTE, json={"composition": {"SiC": 1.0}, "processing": {"grain_size": 5}})
    assert response.status_code == 422
    assert response.json() == {"detail": "processing.sintering_temperature is required"}


def test_second_start_loads_the_pickled_forest(
    client: TestClient, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refit(*args: object) -> None:
        raise AssertionError("fitted again")

    monkeypatch.setattr(naive_server, "fit_forest", refit)
    again = TestClient(build_app(rows=ROWS, trees=TREES, cache_dir=cache_dir))
    body, headers = wrk_body("wrk_post.lua"), {"Content-Type": "application/json"}
    assert len(list(cache_dir.glob("forest-*.pkl"))) == 1
    assert (
        again.post(ROUTE, content=body, headers=headers).json()
        == client.post(ROUTE, content=body, headers=headers).json()
    )
    assert again.get("/readyz").json() == {"ready": True}
