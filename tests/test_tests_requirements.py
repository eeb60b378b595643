"""tests/requirements.py: a missing system package skips outside CI and fails in CI, and the end of
the run gets one line per group."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.requirements import require_binary, require_module, summary_lines


@pytest.mark.parametrize("ci", ["", "false", "0"])
def test_outside_ci_a_missing_binary_skips_naming_the_enabling_command(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match=r"\[demo-skip\] no-such-binary-x not found on PATH"):
        require_binary("no-such-binary-x", group="demo-skip", enable="apt-get install -y x")


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_a_missing_requirement_fails(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI must not skip it"):
        require_module("no_such_module_x", group="demo-fail", enable="pip install x")


def test_a_binary_is_found_in_the_search_folders_first(tmp_path: Path):
    tool = tmp_path / "python-here"
    tool.symlink_to(sys.executable)
    assert require_binary("python-here", group="demo", enable="-", search=(tmp_path,)) == str(tool)


def test_the_summary_has_one_line_per_group_with_its_skipped_tests(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    reasons = []
    for name in ("tool-a-x", "tool-b-x"):
        with pytest.raises(pytest.skip.Exception) as skipped:
            require_binary(name, group="demo-group", enable=f"apt-get install -y {name}")
        reasons += [f"Skipped: {skipped.value.msg}"] * 2
    lines = [line for line in summary_lines(reasons) if "'demo-group'" in line]
    assert lines == [
        "skipped 4 test(s) of group 'demo-group' (tool-a-x not found on PATH; tool-b-x not found on PATH): "
        "enable with `apt-get install -y tool-a-x` and `apt-get install -y tool-b-x`"
    ]
