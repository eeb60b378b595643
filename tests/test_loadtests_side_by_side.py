"""loadtests/side_by_side.py: the two ratios of the table (of the best rounds, and the median of
each round's own)."""

from __future__ import annotations

import pytest

from loadtests.side_by_side import Cell, best, paired_ratios, print_table, service_ratios

CELLS = (("cold", "wrk_new_material.lua", 16),)


def _rounds(*rates: float) -> list[dict[str, Cell]]:
    return [{"cold": Cell(requests_per_s=r, p50_ms=1.0, p99_ms=2.0, errors=0)} for r in rates]


def test_the_best_round_ratio_and_the_median_of_the_paired_rounds() -> None:
    # round 2 is slow for both (the machine was busy): it does not decide either ratio
    runs = {"service": _rounds(900, 500, 1000), "in-process": _rounds(1000, 600, 1250)}
    best_ratio = service_ratios({t: best(r) for t, r in runs.items()}, CELLS)["service / in-process"]["cold"]
    assert best_ratio == pytest.approx(1000 / 1250)
    paired = paired_ratios(runs, CELLS)["service / in-process"]["cold"]
    assert paired == pytest.approx(sorted([0.9, 500 / 600, 0.8])[1])


def test_rounds_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        paired_ratios({"service": _rounds(1, 2), "in-process": _rounds(1)}, CELLS)


def test_the_table_shows_every_round_and_both_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    runs = {"service:COALESCE_IN_FLIGHT=2": _rounds(900, 500, 1000), "in-process": _rounds(1000, 600, 1250)}
    results = {t: best(r) for t, r in runs.items()}
    ratios = service_ratios(results, CELLS)
    print_table(runs, results, ratios, paired_ratios(runs, CELLS), CELLS)
    lines = capsys.readouterr().out.splitlines()
    assert any(
        line.strip().startswith("service:COALESCE_IN_FLIGHT=2") and "rounds 900 / 500 / 1000" in line for line in lines
    )
    assert any("best   1250 req/s" in line and "rounds 1000 / 600 / 1250" in line for line in lines)
    assert any(
        line.strip().startswith("service:COALESCE_IN_FLIGHT=2 / in-process  0.80 (median of the rounds 0.83)")
        for line in lines
    )


class _Process:
    def __init__(self, command: str):
        self.command = command

    def cmdline(self) -> list[str]:
        return self.command.split()


def test_a_targets_processes_are_told_apart_by_role():
    from loadtests.side_by_side import role

    worker = "python -m _bentoml_impl.worker.service service:ArmorService"
    assert role(_Process(f"{worker} --service-name armor_models --fd 3")) == "runner"
    assert role(_Process(f"{worker} --fd 7 --service-name ceramic_armor --worker-id 2")) == "api"
    assert role(_Process("python -m predlog.process")) == "writer"
    assert role(_Process("python bentoml serve service:ArmorService")) == "main"
