"""Put pip into a venv made with `python3 -m venv --without-pip` (the Makefile does this when the
system Python has no ensurepip: Debian's python3 without the python3-venv package).

Fetches the pinned pip wheel from the package index (PIP_INDEX_URL, default PyPI's simple index),
checks its sha256 against the pin, and lets the wheel install itself (a pip wheel runs as
`python pip-X.whl/pip install pip-X.whl`). Standard library only: there is no pip yet.

Usage: .venv/bin/python deploy/bootstrap_pip.py
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

PIP_VERSION = "26.3"  # the Makefile's pin
PIP_WHEEL = f"pip-{PIP_VERSION}-py3-none-any.whl"
PIP_SHA256 = "f3b60b20ffaadd4415ed7957212a38ac63fa4c5fa375bd0f4a797777940fad13"  # PyPI's digest of PIP_WHEEL
DEFAULT_INDEX = "https://pypi.org/simple"


def wheel_url(index: str) -> str:
    """The wheel's address as the index's project page (PEP 503) links it."""
    page_url = index.rstrip("/") + "/pip/"
    with urllib.request.urlopen(page_url, timeout=60) as response:
        page = response.read().decode()
    match = re.search(r'href="([^"#]*' + re.escape(PIP_WHEEL) + r')[#"]', page)
    if match is None:
        raise SystemExit(f"bootstrap_pip: {PIP_WHEEL} is not listed at {page_url}")
    return urllib.parse.urljoin(page_url, match.group(1))


def download(url: str, into: Path) -> Path:
    path = into / PIP_WHEEL
    with urllib.request.urlopen(url, timeout=120) as response:
        path.write_bytes(response.read())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != PIP_SHA256:
        raise SystemExit(f"bootstrap_pip: {url} has sha256 {digest}, expected {PIP_SHA256}")
    return path


def main() -> None:
    index = os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX)
    with tempfile.TemporaryDirectory() as folder:
        wheel = download(wheel_url(index), Path(folder))
        command = [sys.executable, str(wheel / "pip"), "install", "-q", "--no-index", str(wheel)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
