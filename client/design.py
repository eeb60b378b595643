"""The design command's CSV: one row per candidate of a design answer (POST /api/v1/design), the
front first, then the suggestions (strategy explore), or, when nothing was feasible, the closest
candidates with their constraint violations.

Columns: ``kind`` (front, suggestion, closest) and ``rank`` (from 1 within its kind), every input of
the candidate's request body (``composition.SiC``, ``processing.sintering_temperature``, ...), each
target's value, low and high, then ``out_of_domain``, ``violations`` and ``warnings``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from client.cells import inert, significant
from client.core import ArmorClient

KINDS = (("front", "front"), ("suggestions", "suggestion"), ("closest", "closest"))


def _inputs(request: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{block}.{name}": v for block, part in request.items() if isinstance(part, dict) for name, v in part.items()
    }


def _targets(predictions: dict[str, Any]) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for target, entry in predictions.items():
        low, high = entry.get("confidence_interval") or (None, None)
        cells |= {target: entry["value"], f"{target}_low": low, f"{target}_high": high}
    return cells


def _violations(entry: dict[str, Any]) -> str:
    return "; ".join(f"{v['constraint']} (off by {v['violation']:.3g})" for v in entry.get("violations", []))


def rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer's candidates as flat rows (in the module doc's order of kinds)."""
    flat = []
    for key, kind in KINDS:
        for rank, entry in enumerate(answer.get(key) or [], start=1):
            row = {"kind": kind, "rank": rank} | _inputs(entry["request"]) | _targets(entry["predictions"])
            row |= {"out_of_domain": entry.get("out_of_domain"), "violations": _violations(entry)}
            flat.append(row | {"warnings": " | ".join(entry.get("warnings", []))})
    return flat


def _columns(flat: Iterable[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for row in flat:
        columns |= dict.fromkeys(row)
    return list(columns)


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return ""
    return significant(repr(value), digits) if isinstance(value, float) else str(value)


def write_csv(answer: dict[str, Any], out: TextIO, digits: int = 6, escape_formulas: bool = True) -> int:
    """The answer's rows as CSV (numbers to ``digits`` significant figures, 0: as they came);
    returns how many were written."""
    flat = rows(answer)
    columns = _columns(flat) or ["kind", "rank"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in flat:
        cells = [_cell(row.get(c), digits) for c in columns]
        writer.writerow([inert(cell) if escape_formulas else cell for cell in cells])
    return len(flat)


def run_design(
    client: ArmorClient, spec: dict[str, Any], on_progress: Callable[[dict[str, Any]], None] = lambda p: None
) -> dict[str, Any]:
    """The design answer, reporting each progress event to ``on_progress`` as it arrives."""
    answer: dict[str, Any] = {}
    for event in client.design_events(spec):
        if "progress" in event:
            on_progress(event["progress"])
        else:
            answer = event
    return answer
