"""Screen a CSV of candidate materials of any size through a /batch route, writing the results as
they arrive: one output row per input row, in order (or ranked, when screening options are given),
with the value and 95 % interval of every target, the warnings, and the row's status and error.

Rows that come back 503 (the runner went away in the middle of a batch) are sent again, after a
back-off, up to ``row_retries`` times; the rows after the first of them are held until then, so
the output stays in input order. An ``id_column`` is not sent: it is copied into the output.

The numbers (values, interval bounds, a ballistic build's figures) are written to ``digits``
significant figures, and every cell a spreadsheet would run as a formula gets a leading quote
(client/cells.py), unless told otherwise.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from client.cells import inert, significant
from client.core import ArmorClient, chunked

DEFAULT_DIGITS = 6  # significant figures: the models' 95 % intervals are wider than 1e-6 relative


@dataclass
class ScreenSummary:
    rows: int = 0
    predicted: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass
class _Batch:
    """One request's rows and where its answer's columns are."""

    family: str
    header: list[str]
    rows: list[list[str]]
    params: dict[str, Any]


def _csv_text(header: list[str], rows: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _answer(client: ArmorClient, batch: _Batch, rows: list[list[str]]) -> tuple[list[str], Iterator[list[str]]]:
    """The answer's columns and its rows, read as they arrive."""
    lines = client.batch_lines(batch.family, _csv_text(batch.header, rows), "text/csv", "text/csv", batch.params)
    reader = csv.reader(line.decode() for line in lines)
    return next(reader), reader


def _retried(
    client: ArmorClient, batch: _Batch, held: list[list[str]], row_at: int, status_at: int, retries: int
) -> None:
    """Send the held rows that came back 503 again, replacing their results in place."""
    for attempt in range(retries):
        failed = [i for i, cells in enumerate(held) if cells[status_at] == "503"]
        if not failed:
            return
        time.sleep(client.backoff_s * 2**attempt)
        _, answer = _answer(client, batch, [batch.rows[int(held[i][row_at])] for i in failed])
        for cells in answer:
            original = held[failed[int(cells[row_at])]][row_at]
            held[failed[int(cells[row_at])]] = [original, *cells[1:]]


def _results(
    client: ArmorClient, batch: _Batch, row_retries: int, on_columns: Callable[[list[str]], None]
) -> Iterator[list[str]]:
    columns, answer = _answer(client, batch, batch.rows)
    on_columns(columns)
    row_at, status_at = columns.index("row"), columns.index("status")
    screening = any(k in batch.params for k in ("rank_by", "where", "top"))
    held: list[list[str]] = []
    for cells in answer:
        if not screening and (held or cells[status_at] == "503"):
            held.append(cells)
        else:
            yield cells
    if held:
        _retried(client, batch, held, row_at, status_at, row_retries)
        yield from held


def screen_csv(
    client: ArmorClient,
    family: str,
    source: TextIO,
    out: TextIO,
    *,
    batch_rows: int | None = 1000,
    params: dict[str, Any] | None = None,
    id_column: str | None = None,
    row_retries: int = 3,
    digits: int = DEFAULT_DIGITS,
    escape_formulas: bool = True,
    on_rows: Callable[[int], None] = lambda n: None,
) -> ScreenSummary:
    """Read ``source`` (a header row, a material a row), write the results to ``out``.
    ``batch_rows`` None: one request for the whole file (what screening across all rows needs).
    ``digits``: significant figures of the values and bounds (0: as the service wrote them);
    ``escape_formulas`` False: write formula-like cells (=, +, -, @, tab, CR) as they came."""
    started, summary = time.perf_counter(), ScreenSummary()
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None:
        raise ValueError("the input CSV is empty; expected a header row")
    id_at = header.index(id_column) if id_column is not None else None  # ValueError names a missing column
    keep = [i for i in range(len(header)) if i != id_at]
    writer = _CellWriter(out, escape_formulas)
    numbers = slice(0)  # the number columns of the service's answer (status to warnings), once its header came
    rows = (
        [cells[i] if i < len(cells) else "" for i in keep] + [_id(cells, id_at)]
        for cells in reader
        if any(c.strip() for c in cells)
    )
    written_header = False

    def write_header(columns: list[str]) -> None:
        nonlocal written_header, numbers
        if not written_header:
            writer.writerow([*([id_column] if id_column else []), *columns])
            numbers = slice(columns.index("status") + 1, columns.index("warnings"))
            written_header = True

    offset = 0
    for chunk in chunked(rows, batch_rows or 1 << 62):
        batch = _Batch(family, [header[i] for i in keep], [r[:-1] for r in chunk], params or {})
        for cells in _results(client, batch, row_retries, write_header):
            index = int(cells[0])
            ok = cells[1] == "200"
            summary.predicted += ok
            summary.errors += not ok
            cells[numbers] = [significant(cell, digits) for cell in cells[numbers]]
            writer.writerow([*([chunk[index][-1]] if id_column else []), str(offset + index), *cells[1:]])
            on_rows(1)
        summary.rows += len(chunk)
        offset += len(chunk)
    summary.seconds = time.perf_counter() - started
    return summary


class _CellWriter:
    """csv.writer whose cells are made inert for spreadsheets first (when ``escape``). A row with
    a carriage return in a cell is written with every cell quoted: the writer quotes only the
    characters of its line terminator ("\n"), and a bare "\r" would end the line for a reader."""

    def __init__(self, out: TextIO, escape: bool):
        self._escape = escape
        self._minimal = csv.writer(out, lineterminator="\n")
        self._quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, cells: list[str]) -> None:
        cells = [inert(cell) for cell in cells] if self._escape else cells
        (self._quoted if any("\r" in cell for cell in cells) else self._minimal).writerow(cells)


def _id(cells: list[str], at: int | None) -> str:
    return cells[at] if at is not None and at < len(cells) else ""


def count_rows(path: str) -> int:
    """Data rows of a CSV file (non-blank rows after the header), for the progress bar."""
    with open(path, newline="") as handle:
        return max(0, sum(1 for cells in csv.reader(handle) if any(c.strip() for c in cells)) - 1)
