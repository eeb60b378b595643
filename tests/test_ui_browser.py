"""The web page (ui/) in a real headless Chromium against a real `bentoml serve` with API keys on:
predict with a preset and compare every value with the API's answer for the same body, draw sweeps
and compare their points with the batch and hardness routes, screen examples/candidates.csv, and
check that no request left 127.0.0.1 and that the console logged no error.

Screenshots of each view (1280x800 and a phone's width) go to $UI_SCREENSHOT_DIR (default: a
temporary directory, printed). Needs Debian's ``chromium`` and ``chromium-driver``; skipped
without them (.ci/run installs both).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.requirements import require_binary
from tests.support import BentoServer

pytestmark = pytest.mark.e2e


ENABLE_BROWSER = "apt-get install -y chromium chromium-driver"

REPO = Path(__file__).resolve().parent.parent
PRESETS = json.loads((REPO / "ui" / "static" / "presets.json").read_text())
CANDIDATES = REPO / "examples" / "candidates.csv"
API_KEY = "ui-test-key"
WAIT_S = 60
SWEEP_POINTS = 25  # ui/static/js/sweep.js SWEEP_POINTS
# Flags for Chromium as root on a machine without internet: nothing of its own phones home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",  # screenshots as wide as the viewport
)


def preset(preset_id: str) -> dict[str, Any]:
    return next(p["material"] for p in PRESETS["presets"] if p["id"] == preset_id)


@pytest.fixture(scope="module")
def served(stored_tags, hardness_tag, bentoml_home, tmp_path_factory) -> Iterator[BentoServer]:
    """bentoml serve with API keys, in its own BENTOML_HOME holding a copy of the model store."""
    home = tmp_path_factory.mktemp("bentoml-home-ui")
    shutil.copytree(Path(bentoml_home) / "models", home / "models")
    server = BentoServer(
        {
            "BENTOML_HOME": str(home),
            "API_WORKERS": "1",
            "PREDICTION_WORKERS": "1",
            "API_KEYS": API_KEY,
            "PREDICTION_LOG": "true",  # the drift view reads it
            "DATABASE_URL": f"sqlite:///{home}/prediction-log.sqlite3",
        }
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, headers={"X-API-Key": API_KEY}, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def shots() -> Path:
    directory = Path(os.environ.get("UI_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="armor-ui-shots-"))
    directory.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {directory}")
    return directory


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[WebDriver]:
    chromium = require_binary("chromium", group="browser", enable=ENABLE_BROWSER)
    chromedriver = require_binary("chromedriver", group="browser", enable=ENABLE_BROWSER)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser, served) -> Iterator[WebDriver]:
    """The page, loaded from / at 1280x800 with the API key entered; after the test, no request
    may have left 127.0.0.1 and the console may hold no error."""
    viewport(browser, 1280, 800)
    browser.get(served.url + "/")
    wait_ready(browser)
    assert urlsplit(browser.current_url).path == "/ui/"
    browser.find_element(By.CSS_SELECTOR, ".api-key summary").click()
    key = browser.find_element(By.CSS_SELECTOR, '[data-testid="api-key"]')
    key.clear()
    key.send_keys(API_KEY)
    browser.find_element(By.CSS_SELECTOR, ".api-key summary").click()
    yield browser
    assert_clean(browser, served.url)


def viewport(driver: WebDriver, width: int, height: int, mobile: bool = False) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def wait_ready(driver: WebDriver) -> None:
    WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))


def assert_clean(driver: WebDriver, base: str) -> None:
    """Every request the page made went to the service; the console logged no error."""
    origin = urlsplit(base)
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        url = urlsplit(message["params"]["request"]["url"])
        if url.scheme in ("http", "https", "ws", "wss"):
            hosts.add((url.hostname, url.port))
    assert hosts <= {(origin.hostname, origin.port)}, hosts
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def screenshot(driver: WebDriver, path: Path) -> None:
    """The whole page (beyond the viewport) as PNG."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(shot["data"]))


def click(driver: WebDriver, selector: str) -> None:
    element = driver.find_element(By.CSS_SELECTOR, selector)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def choose_family(driver: WebDriver, family: str) -> None:
    click(driver, f'input[name="family"][value="{family}"]')


def predicted(driver: WebDriver, targets: list[str]) -> dict[str, dict[str, Any]]:
    """Each result card's value and interval: the full precision (data-*) and the text shown."""
    WebDriverWait(driver, WAIT_S).until(
        lambda d: all(d.find_elements(By.CSS_SELECTOR, f'[data-testid="value-{t}"]') for t in targets)
    )
    out = {}
    for t in targets:
        value = driver.find_element(By.CSS_SELECTOR, f'[data-testid="value-{t}"]')
        interval = driver.find_element(By.CSS_SELECTOR, f'[data-testid="interval-{t}"]')
        out[t] = {
            "value": float(value.get_attribute("data-value")),
            "text": value.text,
            "interval": [float(interval.get_attribute("data-low")), float(interval.get_attribute("data-high"))],
        }
    return out


@pytest.mark.parametrize(("family", "preset_id"), [("mechanical", "hot-pressed-b4c"), ("ballistic", "sic-b4c")])
def test_preset_prediction_shows_the_apis_answer(page, api, shots, family, preset_id):
    choose_family(page, family)
    click(page, f'[data-testid="preset-{preset_id}"]')
    explain = family == "mechanical"  # the contributions chart, on request
    if explain:
        click(page, "#explain")
    click(page, '[data-testid="predict"]')
    expected = api.post(f"/api/v1/predict/{family}", json=preset(preset_id)).json()["predictions"]
    shown = predicted(page, list(expected))
    if explain:
        WebDriverWait(page, WAIT_S).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="contributions-chart"] svg.marks')
        )
    for target, p in expected.items():
        assert shown[target]["value"] == p["value"], target
        assert shown[target]["interval"] == p["confidence_interval"], target
        # the text is rounded to what the interval supports: within a tenth of its half-width
        half = (p["confidence_interval"][1] - p["confidence_interval"][0]) / 2
        assert abs(float(shown[target]["text"].replace(",", "")) - p["value"]) <= half / 10, target
    screenshot(page, shots / f"predict-{family}.png")


def test_api_errors_show_next_to_their_fields(page):
    click(page, '[data-testid="preset-dense-sic"]')
    porosity = page.find_element(By.ID, "in-microstructure-porosity")
    porosity.clear()
    porosity.send_keys("0.5")
    click(page, '[data-testid="predict"]')
    slot = '[data-error-for="microstructure.porosity"]'
    WebDriverWait(page, WAIT_S).until(lambda d: d.find_element(By.CSS_SELECTOR, slot).text)
    assert "0.3" in page.find_element(By.CSS_SELECTOR, slot).text
    assert porosity.get_attribute("aria-invalid") == "true"
    # the refused request is the console's only error (Chromium logs every 4xx answer)
    errors = [e["message"] for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert errors and all("status of 422" in e for e in errors), errors


def grid(low: float, high: float, n: int, log: bool) -> list[float]:
    """ui/static/js/sweep.js grid()."""
    return [low * (high / low) ** (i / (n - 1)) if log else low + (high - low) * i / (n - 1) for i in range(n)]


def sweep_points(driver: WebDriver) -> list[dict[str, Any]]:
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.execute_script("return window.armorUI.chartData('sweep', 'points')")
    )
    return driver.execute_script("return window.armorUI.chartData('sweep', 'points')")


def test_ballistic_sweep_points_equal_the_batch_routes(page, api, shots, served):
    choose_family(page, "ballistic")
    click(page, '[data-testid="preset-dense-sic"]')
    click(page, "#tab-sweep")
    assert Select(page.find_element(By.ID, "sweep-input")).first_selected_option.get_attribute("value") == (
        "armor.tile_thickness"
    )
    click(page, '[data-testid="draw-sweep"]')
    points = sweep_points(page)
    catalogue = api.get("/api/v1/catalogue").json()
    spec = next(i for i in catalogue["inputs"] if i["name"] == "tile_thickness")
    xs = grid(spec["low"], spec["high"], SWEEP_POINTS, spec["log_scaled"])
    material = preset("dense-sic")
    materials = [{**material, "armor": {"tile_thickness": x}} for x in xs]
    results = api.post("/api/v1/predict/ballistic/batch", json={"materials": materials}).json()["results"]
    swept = [p for p in points if not p["current"]]
    assert len(swept) == SWEEP_POINTS * len(catalogue["families"]["ballistic"]["targets"])
    for p in swept:
        i = min(range(len(xs)), key=lambda k: abs(xs[k] - p["x"]))
        assert p["x"] == pytest.approx(xs[i], rel=1e-12)
        entry = results[i]["predictions"][p["target"]]
        assert [p["value"], p["low"], p["high"]] == [entry["value"], *entry["confidence_interval"]], (p, entry)
    current = {p["target"]: p for p in points if p["current"]}
    single = api.post("/api/v1/predict/ballistic", json=material).json()["predictions"]
    assert {t: c["value"] for t, c in current.items()} == {t: s["value"] for t, s in single.items()}
    # the threat's reference velocity is drawn and named
    note = page.find_element(By.ID, "sweep-note").text
    threat = next(i for i in catalogue["inputs"] if i["name"] == "threat")["default"]
    velocity = catalogue["armor"]["threats"][threat]["reference_velocity_m_s"]
    assert f"{velocity} m/s" in note
    actions = page.find_elements(By.CSS_SELECTOR, '[data-testid="sweep-chart"] .vega-actions a')
    assert sorted(a.get_attribute("textContent") for a in actions) == ["Save as PNG", "Save as SVG"]
    screenshot(page, shots / "sweep-ballistic.png")


def test_a_phase_fraction_sweeps_with_the_other_phases_filling_the_rest(page, api):
    click(page, '[data-testid="preset-sic-b4c"]')
    click(page, "#tab-sweep")
    Select(page.find_element(By.ID, "sweep-input")).select_by_value("composition.SiC")
    click(page, '[data-testid="draw-sweep"]')
    points = [p for p in sweep_points(page) if not p["current"]]
    xs = grid(0.0, 1.0, SWEEP_POINTS, False)
    material = preset("sic-b4c")

    def composition(x: float) -> dict[str, float]:
        return {k: v for k, v in {"SiC": x, "B4C": 1 - x}.items() if v > 0}

    materials = [{**material, "composition": composition(x)} for x in xs]
    results = api.post("/api/v1/predict/mechanical/batch", json={"materials": materials}).json()["results"]
    density = [p for p in points if p["target"] == "density"]
    assert [p["x"] for p in density] == pytest.approx(xs, abs=1e-15)
    assert [p["value"] for p in density] == [r["predictions"]["density"]["value"] for r in results]


def test_hardness_prediction_and_sweep_against_load_on_a_log_axis(page, api, shots):
    choose_family(page, "hardness")
    click(page, '[data-testid="preset-tib2"]')
    click(page, '[data-testid="predict"]')
    single = api.post("/api/v1/predict/hardness", json={"formula": "TiB2"}).json()["predictions"][0]
    shown = predicted(page, ["vickers_hardness"])["vickers_hardness"]
    assert (shown["value"], shown["interval"]) == (
        single["vickers_hardness"]["value"],
        single["vickers_hardness"]["confidence_interval"],
    )
    click(page, "#tab-sweep")
    click(page, '[data-testid="draw-sweep"]')
    points = sweep_points(page)
    catalogue = api.get("/api/v1/catalogue").json()
    load = catalogue["formula"]["load"]
    loads = grid(load["low"], load["high"], catalogue["limits"]["max_loads"] - 1, True)
    answer = api.post("/api/v1/predict/hardness", json={"formula": "TiB2", "load_n": loads}).json()["predictions"]
    swept = [p for p in points if not p["current"]]
    assert [p["x"] for p in swept] == pytest.approx(loads, rel=1e-9)  # the answer echoes load_n to 10 digits
    assert [p["value"] for p in swept] == [a["vickers_hardness"]["value"] for a in answer]
    assert page.execute_script("return document.querySelector('[data-testid=\"sweep-chart\"] svg') !== null"), (
        "the chart was drawn"
    )
    screenshot(page, shots / "sweep-hardness.png")


def caption_number(caption: str, pattern: str) -> float:
    found = re.search(pattern, caption)
    assert found, (pattern, caption)
    return float(found.group(1))


def inside_the_frame(driver: WebDriver, chart: str) -> dict[str, float]:
    """The y extents (px) of the chart's bands (area marks) and of its plot frame."""
    return driver.execute_script(
        """const svg = document.querySelector(arguments[0] + ' svg');
        const frame = svg.querySelector('.mark-group.role-scope path.background').getBoundingClientRect();
        const bands = [...svg.querySelectorAll('.mark-area path')].map((p) => p.getBoundingClientRect());
        return {frame_top: frame.top, frame_bottom: frame.bottom,
                band_top: Math.min(...bands.map((b) => b.top)),
                band_bottom: Math.max(...bands.map((b) => b.bottom))};""",
        f'[data-testid="{chart}"]',
    )


@pytest.mark.parametrize("formula", ["B4C", "SiC"])
def test_the_hardness_sweep_states_the_served_load_law_and_fits_its_band(page, api, shots, formula):
    """The caption names the law the values follow (Li & Bradt's PSR, docs/science.md) with the
    API's parameters for the same loads, not a power law fitted over them; the y axis holds the band."""
    choose_family(page, "hardness")
    click(page, f'[data-testid="preset-{formula.lower()}"]')
    click(page, "#tab-sweep")
    click(page, '[data-testid="draw-sweep"]')
    sweep_points(page)
    catalogue = api.get("/api/v1/catalogue").json()
    load = catalogue["formula"]["load"]
    loads = grid(load["low"], load["high"], catalogue["limits"]["max_loads"] - 1, True) + [load["default"]]
    law = api.post("/api/v1/predict/hardness", json={"formula": formula, "load_n": loads}).json()["load_dependence"]
    caption = page.find_element(By.ID, "sweep-note").text
    assert "Li & Bradt" in caption and "proportional specimen resistance" in caption, caption
    assert "^" not in caption, caption  # no power law
    assert caption_number(caption, r"H0 = ([\d.]+) GPa") == pytest.approx(law["load_independent_gpa"], abs=0.05)
    assert caption_number(caption, r"P\* = ([\d.]+) N") == pytest.approx(law["characteristic_load_n"], rel=5e-3)
    assert caption_number(caption, r"below ([\d.]+) N") == pytest.approx(law["plateau_load_n"], rel=5e-3)
    assert caption_number(caption, r"held at ([\d.]+) GPa") == pytest.approx(law["plateau_gpa"], abs=0.05)
    extents = inside_the_frame(page, "sweep-chart")
    assert extents["frame_top"] < extents["band_top"] and extents["band_bottom"] < extents["frame_bottom"], extents
    screenshot(page, shots / f"sweep-hardness-{formula}.png")


def ndjson_rows(api: httpx.Client, screening: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """examples/candidates.csv without its sample column, through the batch route as NDJSON."""
    rows = list(csv.reader(io.StringIO(CANDIDATES.read_text())))
    keep = [i for i, name in enumerate(rows[0]) if name != "sample"]
    body = "\n".join(",".join(r[i] for i in keep) for r in rows) + "\n"
    answer = api.post(
        "/api/v1/predict/ballistic/batch",
        content=body,
        headers={"Content-Type": "text/csv", "Accept": "application/x-ndjson"},
        params=screening,
    )
    return [json.loads(line) for line in answer.text.splitlines() if line and "summary" not in json.loads(line)]


def test_screening_the_candidates_shows_every_row_and_its_errors(page, api, shots):
    click(page, "#tab-screen")
    Select(page.find_element(By.ID, "screen-family")).select_by_value("ballistic")
    page.find_element(By.CSS_SELECTOR, '[data-testid="screen-file"]').send_keys(str(CANDIDATES))
    click(page, '[data-testid="screen"]')
    WebDriverWait(page, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="screen-table"] tbody tr')
    )
    expected = {r["row"]: r for r in ndjson_rows(api)}
    samples = [r[0] for r in list(csv.reader(io.StringIO(CANDIDATES.read_text())))[1:]]
    shown = page.find_elements(By.CSS_SELECTOR, '[data-testid="screen-table"] tbody tr')
    assert len(shown) == len(expected) == len(samples)
    errors = 0
    for tr in shown:
        row = int(tr.get_attribute("data-row"))
        cells = tr.find_elements(By.TAG_NAME, "td")
        assert cells[2].text == samples[row]
        if "error" in expected[row]:
            errors += 1
            message = tr.find_element(By.CSS_SELECTOR, '[data-testid="row-error"]').text
            for detail in expected[row]["error"]["details"]:
                assert detail["field"] in message and detail["message"] in message
            continue
        values = [float(c.get_attribute("data-value")) for c in tr.find_elements(By.CSS_SELECTOR, "td.num")]
        assert values == [p["value"] for p in expected[row]["predictions"].values()]
    assert errors >= 1, "examples/candidates.csv holds a row the route refuses (lab-007's porosity)"
    status = page.find_element(By.ID, "screen-status").text
    assert f"{len(samples)} rows" in status and f"{errors} with errors" in status
    assert page.find_element(By.CSS_SELECTOR, '[data-testid="ashby-chart"] svg')
    screenshot(page, shots / "screen.png")


def test_screening_filters_and_ranks_as_the_route_does_and_sorts(page, api):
    where, rank_by, top = "penetration_resistance >= 1.5", "v50_velocity_low", 3
    click(page, "#tab-screen")
    Select(page.find_element(By.ID, "screen-family")).select_by_value("ballistic")
    Select(page.find_element(By.ID, "screen-rank")).select_by_value(rank_by)
    page.find_element(By.ID, "screen-top").send_keys(str(top))
    page.find_element(By.ID, "screen-where").send_keys(where)
    page.find_element(By.CSS_SELECTOR, '[data-testid="screen-file"]').send_keys(str(CANDIDATES))
    click(page, '[data-testid="screen"]')
    WebDriverWait(page, WAIT_S).until(lambda d: "met the constraints" in d.find_element(By.ID, "screen-status").text)
    expected = ndjson_rows(api, {"rank_by": rank_by, "top": top, "where": where})
    shown = page.find_elements(By.CSS_SELECTOR, '[data-testid="screen-table"] tbody tr')
    assert [int(tr.get_attribute("data-row")) for tr in shown] == [r["row"] for r in expected]  # the route's order
    ranked = [r for r in expected if "error" not in r]
    assert len(ranked) == top and all(r["predictions"]["penetration_resistance"]["value"] >= 1.5 for r in ranked)
    click(page, 'th[data-key="v50_velocity"] button')  # sort by the value, highest first
    values = [
        float(td.get_attribute("data-value"))
        for td in page.find_elements(By.CSS_SELECTOR, "tbody tr td.num:nth-child(4)")
    ]
    assert values == sorted(values, reverse=True)


def test_a_shared_link_reproduces_the_prediction_and_history_compares(page, api, browser, served, shots):
    choose_family(page, "mechanical")
    click(page, '[data-testid="preset-alumina-995"]')
    click(page, '[data-testid="predict"]')
    first = predicted(page, ["density"])
    link = page.current_url
    assert "#" in link and "Al2O3" in link
    page.get("about:blank")
    page.get(link)  # a colleague opening the link: the same material, predicted at once
    wait_ready(page)
    again = predicted(page, ["density"])
    assert again["density"]["value"] == first["density"]["value"]
    kept = page.execute_script("return JSON.parse(localStorage.getItem('armor.history'))")
    alumina = [k for k in kept if k["request"]["material"].get("composition", {}).get("Al2O3") == 0.995]
    assert len(alumina) == 1 and kept[0]["request"] == alumina[0]["request"]  # kept once, on top
    assert alumina[0]["predictions"]["density"]["value"] == first["density"]["value"]
    click(page, "#tab-compare")
    columns = page.find_elements(By.CSS_SELECTOR, '[data-testid="compare-table"] thead th')
    assert len(columns) == 1 + len(kept) >= 3  # the row header, then every kept prediction (earlier tests' too)
    screenshot(page, shots / "compare.png")


def test_keyboard_alone_switches_views_and_predicts(page, api):
    page.find_element(By.ID, "tab-predict").send_keys(Keys.ARROW_RIGHT)
    assert page.switch_to.active_element.get_attribute("id") == "tab-sweep"
    assert not page.find_element(By.ID, "panel-sweep").get_attribute("hidden")
    page.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
    temperature = page.find_element(By.ID, "in-processing-sintering_temperature")
    temperature.send_keys(Keys.CONTROL, "a")
    temperature.send_keys("1900", Keys.ENTER)  # Enter in any field predicts
    material = {**preset("dense-sic"), "processing": {"sintering_temperature": 1900}}
    expected = api.post("/api/v1/predict/mechanical", json=material).json()["predictions"]["density"]["value"]
    WebDriverWait(page, WAIT_S).until(
        lambda d: (
            [
                float(e.get_attribute("data-value"))
                for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="value-density"]')
            ]
            == [expected]
        )
    )


DESIGN_SPEC = {
    "fixed": {"armor": {"tile_thickness": 10, "backing": "aluminum_6061_t6", "backing_thickness": 6}},
    "free": {"composition": ["SiC", "B4C", "Al2O3"], "processing.sintering_temperature": [1800, 2100]},
    "constraints": ["density_high <= 3.3"],
    "objectives": [{"target": "v50_velocity_low", "goal": "maximize"}, {"target": "density", "goal": "minimize"}],
    "max_evaluations": 64,
    "seed": 3,
}


def test_the_design_view_draws_and_lists_the_apis_front(page, api, shots):
    click(page, "#tab-design")
    spec = page.find_element(By.CSS_SELECTOR, '[data-testid="design-spec"]')
    assert json.loads(spec.get_attribute("value"))["objectives"]  # prefilled with the documented example
    page.execute_script("arguments[0].value = arguments[1]", spec, json.dumps(DESIGN_SPEC))
    click(page, '[data-testid="design"]')
    WebDriverWait(page, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="design-chart"] svg'))
    expected = api.post("/api/v1/design", json=DESIGN_SPEC).json()["front"]  # the same seed: the same front
    rows = page.find_elements(By.CSS_SELECTOR, '[data-testid="design-table"] tbody tr')
    assert len(rows) == len(expected) > 0
    for tr, entry in zip(rows, expected, strict=True):
        shown = [float(c.get_attribute("data-value")) for c in tr.find_elements(By.CSS_SELECTOR, "td.num")]
        assert shown == [entry["objectives"]["v50_velocity_low"], entry["objectives"]["density"]]
    drawn = page.execute_script("return window.armorUI.chartData('design', 'points')")
    assert [(p["x"], p["y"]) for p in drawn] == [
        (e["predictions"]["v50_velocity"]["value"], e["predictions"]["density"]["value"]) for e in expected
    ]
    assert [(p["xlo"], p["xhi"]) for p in drawn] == [
        tuple(e["predictions"]["v50_velocity"]["confidence_interval"]) for e in expected
    ]
    assert "64 evaluations" in page.find_element(By.CSS_SELECTOR, '[data-testid="design-status"]').text
    screenshot(page, shots / "design.png")


def test_readable_on_a_phone(page, shots):
    viewport(page, 390, 844, mobile=True)
    click(page, '[data-testid="preset-dense-sic"]')
    click(page, '[data-testid="predict"]')
    predicted(page, ["density"])
    overflow = page.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone"
    screenshot(page, shots / "predict-phone.png")


def test_api_docs_are_served_without_third_party_requests(browser, served, shots):
    viewport(browser, 1280, 800)
    browser.get(served.url + "/ui/docs.html")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
    paths = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
    assert "/api/v1/predict/mechanical" in paths and "/api/v1/catalogue" in paths
    screenshot(browser, shots / "docs.png")
    assert_clean(browser, served.url)


def test_without_the_key_the_page_says_what_is_missing(browser, served):
    browser.get_log("browser")
    browser.get(served.url + "/ui/")
    wait_ready(browser)
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    wait_ready(browser)
    click(browser, '[data-testid="predict"]')
    box = browser.find_element(By.ID, "predict-error")
    WebDriverWait(browser, WAIT_S).until(lambda d: box.text)
    assert "401" in box.text and "API key" in box.text
    # the refused requests are the console's only errors (the link in the address bar predicts on load, too)
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors and all("status of 401" in e for e in errors), errors
    browser.get_log("performance")


def test_the_drift_view_reports_the_logged_answers(page, api):
    """The test models were stored with dataset_sha256 0...0: the page says the reference table
    is not their training data, and draws no bar."""
    api.post("/api/v1/predict/mechanical", json=preset("dense-sic"))
    click(page, "#tab-drift")
    note = page.find_element(By.CSS_SELECTOR, '[data-testid="drift-note"]')
    WebDriverWait(page, WAIT_S).until(lambda d: "mechanical:" in note.text)
    assert "not this model's training data" in note.text and "with warnings" in note.text
    assert "No input has enough" in page.find_element(By.CSS_SELECTOR, '[data-testid="drift-chart"]').text
    assert page.find_element(By.ID, "workbench").get_attribute("hidden") is not None
