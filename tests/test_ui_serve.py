"""ui/serve.py: the page at /ui/ (and / sent there), its headers, its files and what ships them.
In process (FastAPI's TestClient); the page itself is driven in tests/test_ui_browser.py."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from pathlib import Path

import pathspec
import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from settings import AccessSettings
from ui.serve import CONTENT_SECURITY_POLICY, STATIC_DIR

REPO = Path(__file__).resolve().parent.parent
VENDOR = STATIC_DIR / "vendor"
OWN_FILES = [p for p in STATIC_DIR.rglob("*") if p.is_file() and VENDOR not in p.parents]


def _no_service():
    raise AssertionError("the page's routes never reach the service core")


@pytest.fixture(scope="module")
def http():
    with TestClient(create_app(_no_service, max_request_bytes=65536)) as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/ui"])
def test_the_root_and_the_bare_prefix_send_the_browser_to_the_page(http, path):
    answer = http.get(path, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (307, "/ui/")


def test_the_page_comes_with_its_content_security_policy(http):
    answer = http.get("/ui/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "connect-src 'self'" in CONTENT_SECURITY_POLICY and "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert 'data-testid="predict"' in answer.text


def _references(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix == ".html":
        return re.findall(r'(?:src|href)="([^"#]+)"', text)
    return re.findall(r'from "(\./[^"]+)"', text)  # ES module imports


@pytest.mark.parametrize("page", [p for p in OWN_FILES if p.suffix in (".html", ".js")], ids=lambda p: p.name)
def test_every_file_a_page_or_module_refers_to_is_served(http, page):
    for reference in _references(page):
        if reference.startswith("/"):
            url = reference  # the service's own routes, e.g. /docs.json
        else:
            url = "/ui/" + str((page.parent / reference).resolve().relative_to(STATIC_DIR.resolve()))
            if reference.endswith("/"):
                url += "/"
        if url.startswith("/docs.json"):
            continue  # BentoML's route, not the app's (tests/test_e2e_serve.py)
        assert http.get(url).status_code == 200, (page.name, reference)


@pytest.mark.parametrize("own", OWN_FILES, ids=lambda p: str(p.relative_to(STATIC_DIR)))
def test_the_pages_own_files_name_no_other_host(own):
    if own.suffix in (".html", ".js", ".css", ".json", ".svg"):
        hosts = re.findall(r"\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", own.read_text())
        hosts = [h for h in hosts if not h.endswith("www.w3.org")]  # the SVG namespace, not a request
        assert hosts == []


def _vendored() -> list[tuple[str, str, list[str]]]:
    """(file, sha256, licence files) of each row of VENDORED.md's table."""
    rows = []
    for line in (VENDOR / "VENDORED.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[0-9a-f]{64}", cells[3]):
            rows.append((cells[0], cells[3], re.findall(r"`(licenses/[^`]+)`", cells[2])))
    return rows


def test_every_vendored_file_is_recorded_with_its_checksum_and_licence():
    rows = _vendored()
    assert sorted(f for f, _, _ in rows) == sorted(p.name for p in VENDOR.iterdir() if p.suffix in (".js", ".css"))
    for name, sha256, _ in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == sha256, name
    licences = {licence for _, _, files in rows for licence in files}
    assert licences and all((VENDOR / licence).is_file() for licence in licences)
    assert all(not (VENDOR / n).read_text().rstrip().endswith(".map") for n, _, _ in rows), "no source map asked for"


def _page_files() -> list[str]:
    return sorted(
        str(p.relative_to(REPO)) for p in (REPO / "ui").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )


def test_the_bento_ships_every_file_of_the_page():
    bentofile = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    spec = pathspec.PathSpec.from_lines("gitwildmatch", bentofile["include"])
    assert [f for f in _page_files() if not spec.match_file(f)] == []


def test_the_package_ships_every_file_of_the_page():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "ui" in setuptools["packages"]
    patterns = setuptools["package-data"]["ui"]
    missing = [
        f
        for f in _page_files()
        if not f.endswith(".py") and not any(fnmatch.fnmatch(f.removeprefix("ui/"), p) for p in patterns)
    ]
    assert missing == []


def test_with_api_keys_the_page_loads_and_the_predictions_ask_for_a_key():
    app = create_app(_no_service, max_request_bytes=65536, access=AccessSettings(api_keys=frozenset({"k"})))
    with TestClient(app) as http:
        assert http.get("/ui/").status_code == 200
        assert http.get("/api/v1/catalogue").status_code == 200
        refused = http.post("/api/v1/predict/mechanical", json={})
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "unauthorized"


def test_the_page_is_routed_after_every_api_route(http):
    paths = [getattr(route, "path", "") for route in http.app.routes]
    last_api = max(i for i, p in enumerate(paths) if p.startswith("/api/") or p == "/health")
    assert min(paths.index("/ui"), paths.index("/")) > last_api
