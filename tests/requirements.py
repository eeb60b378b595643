"""What a test needs from the machine beyond the venv, declared in one place.

Everything pip can install comes from the Makefile (`.venv`, and `.venv-tools` for the Kubernetes
checks). What needs a system package is asked for here, by group::

    from tests.requirements import require_binary

    redis = require_binary("redis-server", group="redis", enable="apt-get install -y redis-server")

- found: the function returns the binary's path (or the imported module);
- missing, outside CI: the test is skipped, and at the end of the run one line per group says how
  many tests it skipped and the command that enables them (``pytest_terminal_summary`` in
  tests/conftest.py calls :func:`summary_lines`);
- missing, in CI (``CI`` set to anything but ``false``/``0``/empty, as .ci/run's host sets
  ``CI=true``): the test fails, so nothing is skipped in CI.

Call it inside a test or a fixture (a module-scoped fixture skips every test that uses it), not at
import time. The groups seen in this run are kept in this module (one pytest process).
"""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest


@dataclass(frozen=True)
class Missing:
    """A requirement a test asked for and did not find."""

    group: str
    what: str
    enable: str

    @property
    def reason(self) -> str:
        return f"[{self.group}] {self.what} (enable: {self.enable})"


_MISSING: dict[str, Missing] = {}  # by reason: the groups missed in this pytest process


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(group: str, what: str, enable: str) -> None:
    """Skip the calling test (fail it in CI) because ``what`` is missing; ``enable`` is the
    command that provides it."""
    entry = Missing(group, what, enable)
    if in_ci():
        pytest.fail(f"{entry.reason}; CI must not skip it")
    _MISSING[entry.reason] = entry
    pytest.skip(entry.reason)


def require_binary(name: str, *, group: str, enable: str, search: tuple[Path, ...] = ()) -> str:
    """The path of executable ``name``, looked up in ``search`` first, then on PATH."""
    for folder in search:
        if (folder / name).is_file() and os.access(folder / name, os.X_OK):
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        where = ", ".join(map(str, search)) + " or PATH" if search else "PATH"
        missing(group, f"{name} not found on {where}", enable)
    assert found is not None  # missing() raised
    return found


def require_module(name: str, *, group: str, enable: str) -> ModuleType:
    """The module ``name``, imported."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(group, f"Python module {name} not installed", enable)
        raise  # not reached: missing() raised


def summary_lines(skipped_reasons: list[str]) -> list[str]:
    """One line per group that skipped tests: how many, what was missing and the command(s) that
    enable them. ``skipped_reasons``: the reasons of this run's skipped tests, as pytest reports
    them (it may prefix them with "Skipped: ")."""
    groups: dict[str, list[Missing]] = {}
    for entry in _MISSING.values():
        groups.setdefault(entry.group, []).append(entry)
    lines = []
    for group, entries in sorted(groups.items()):
        count = sum(text.endswith(entry.reason) for text in skipped_reasons for entry in entries)
        if count:
            what = "; ".join(entry.what for entry in entries)
            enable = " and ".join(dict.fromkeys(f"`{entry.enable}`" for entry in entries))
            lines.append(f"skipped {count} test(s) of group '{group}' ({what}): enable with {enable}")
    return lines
