"""The formats of the /batch routes: what comes in (a JSON body with ``materials``, or CSV with the
columns of data/reference_materials.csv, optionally gzip-compressed) and what goes out (JSON,
NDJSON or CSV by ``Accept``, gzip by ``Accept-Encoding``).

CSV in: a header row; the phase columns (fractions; empty = 0) and an optional ``basis``; every
input of the catalogue by its name (empty or absent = its documented default; only
``sintering_temperature`` is required); the target columns of the reference table are accepted and
ignored; any other column is an error naming it. A cell that is not a number where one is expected
is that row's error. Blank lines are skipped and not counted. A block's rows are decoded column by
column into raw columns (``features.batch``) for validation as arrays; a row with a cell that is
not a finite number, or with too many cells, is decoded as one material and validated alone.

CSV out: one line per row; a chunk's answered rows are written from the runner's arrays.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from api.batch.flow import Answers, Block, ChunkOutcomes, Outcome, RawRow, RowBlock
from api.prediction.schemas import BatchOptions
from api.transport.errors import ApiError, BodyTooLarge, InvalidInput, MalformedBody
from api.transport.strict_json import TooManyItems, load_object_with_list
from features.catalogue import TARGETS, categorical_inputs, inputs, numeric_inputs
from features.phases import PHASES

ALL_TARGETS = tuple(t for targets in TARGETS.values() for t in targets)
_BLOCK_OF = {spec.name: spec.block for spec in inputs()}
_NUMERIC = frozenset(spec.name for spec in numeric_inputs())
_LEVELS = tuple(spec.name for spec in categorical_inputs())
REQUIRED_COLUMNS = tuple(spec.name for spec in numeric_inputs() if spec.default is None)
INPUT_COLUMNS = (*PHASES, "basis", *_BLOCK_OF)


class UnsupportedMediaType(ApiError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    kind = "unsupported_media_type"


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(f"invalid request: {field_name}: {message}", [{"field": field_name, "message": message}])


def too_many_rows(max_rows: int) -> BodyTooLarge:
    return BodyTooLarge(f"more than {max_rows} materials in one batch, over the limit (MAX_BATCH_ROWS)")


# Any gzip body may inflate to this many bytes, whatever its ratio (a few thousand repeated rows
# compress several hundred times: 10,000 copies of the example material, 3.6 MB of JSON, to 16 KB)
INFLATE_FLOOR_BYTES = 1024 * 1024


def inflate_limit(wire_bytes: int, max_bytes: int, max_ratio: float) -> int:
    """How far a gzip body of ``wire_bytes`` may inflate: ``max_ratio`` times its size, at least
    INFLATE_FLOOR_BYTES, never past ``max_bytes`` (MAX_BATCH_REQUEST_BYTES)."""
    return min(max_bytes, max(INFLATE_FLOOR_BYTES, int(wire_bytes * max_ratio)))


def decompressed(body: bytes, content_encoding: str, max_bytes: int, max_ratio: float = float("inf")) -> bytes:
    """The body as sent before gzip (Content-Encoding: gzip), at most ``inflate_limit`` bytes of it:
    inflating stops there (zlib's ``max_length``), so a small body of a huge expansion costs the
    limit's worth of work, not its own."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; send gzip or nothing")
    limit = inflate_limit(len(body), max_bytes, max_ratio)
    inflater = zlib.decompressobj(wbits=31)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise MalformedBody("request body is not valid gzip") from None
    if len(plain) > limit and limit == max_bytes:
        raise BodyTooLarge(f"request body over the limit of {max_bytes} bytes once decompressed")
    if len(plain) > limit:
        raise BodyTooLarge(
            f"request body inflates more than {max_ratio:g} times its {len(body)} bytes "
            "(MAX_DECOMPRESSION_RATIO); send it uncompressed or in smaller batches"
        )
    return plain


def _options(data: dict[str, Any], strict: bool) -> BatchOptions:
    try:
        return BatchOptions.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, BatchOptions) from None


def query_options(params: Iterable[tuple[str, str]]) -> BatchOptions:
    """Options from the query string (CSV bodies): ``where`` may repeat; the rest are single values."""
    data: dict[str, Any] = {"where": []}
    for name, value in params:
        if name == "where":
            data["where"].append(value)
        else:
            data[name] = value
    return _options(data, strict=False)


@dataclass
class Job:
    """A decoded batch request: its options, how many materials, and the materials in blocks of
    at most n rows (``blocks(n)``, decoded lazily)."""

    options: BatchOptions
    count: int
    blocks: Callable[[int], Iterator[Block]]


def _row_blocks(rows: list[RawRow]) -> Callable[[int], Iterator[Block]]:
    return lambda size: (RowBlock(rows[start : start + size]) for start in range(0, len(rows), size))


def json_job(body: bytes, max_rows: int) -> Job:
    """``{"materials": [...], <options>}``: the materials read one by one, refused at the one over
    ``max_rows`` (api/transport/strict_json.py); duplicate keys refused."""
    try:
        data, materials = load_object_with_list(body, "materials", max_rows)
    except TooManyItems:
        raise too_many_rows(max_rows) from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(f'request body is not valid JSON ({exc.msg}); expected {{"materials": [...]}}') from None
    if materials is None:
        raise MalformedBody('request body must be a JSON object with a "materials" list')
    options = _options(data, strict=True)
    return Job(options, len(materials), _row_blocks([RawRow(i, m) for i, m in enumerate(materials)]))


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


KNOWN_COLUMNS = frozenset((*INPUT_COLUMNS, *ALL_TARGETS))


def _header(names: list[str]) -> list[str]:
    """The header's column names, checked in time linear in its width; wider than the known
    columns is refused before anything else is looked at (it must repeat or invent one)."""
    if len(names) > len(KNOWN_COLUMNS):
        raise _invalid("columns", f"{len(names)} columns, more than the {len(KNOWN_COLUMNS)} known ones")
    names = [n.strip() for n in names]
    duplicated = sorted(n for n, times in Counter(names).items() if times > 1)
    if duplicated:
        raise _invalid("columns", f"column(s) {duplicated} given more than once")
    unknown = [n for n in names if n not in KNOWN_COLUMNS]
    if unknown:
        raise _invalid("columns", f"unknown column(s) {unknown}; known: {[*INPUT_COLUMNS, *ALL_TARGETS]}")
    missing = [n for n in REQUIRED_COLUMNS if n not in names]
    if missing:
        raise _invalid("columns", f"missing required column(s) {missing}")
    return names


def csv_material(row: int, header: list[str], cells: list[str]) -> RawRow:
    """One CSV row as the nested material of a single request (empty cells left to the defaults)."""
    if len(cells) > len(header):
        return RawRow(row, None, error=_invalid("(row)", f"{len(cells)} cells, the header has {len(header)}"))
    material: dict[str, dict[str, Any]] = {"composition": {}, "processing": {}, "microstructure": {}, "armor": {}}
    notes: dict[str, str] = {}
    for name, raw in zip(header, cells, strict=False):
        cell = raw.strip()
        if not cell or name in ALL_TARGETS:
            continue
        block = _BLOCK_OF.get(name, "composition")
        value: Any = cell
        if name in _NUMERIC or name in PHASES:
            number = _number(cell)
            if number is None:
                notes[f"{block}.{name}"] = f"must be a number, got {cell!r}"
            else:
                value = number
        material[block][name] = value
    return RawRow(row, material, notes)


def _numbers(cells: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A column's cells as numbers (NaN: empty), and which cells are not a finite number."""
    try:
        values = np.array(list(map(float, cells)), dtype=np.float64)  # float() ignores surrounding blanks
        return values, ~np.isfinite(values)
    except ValueError:  # an empty cell, or one that is not a number
        pass
    given = [bool(cell.strip()) for cell in cells]
    numbers = [_number(cell) if filled else np.nan for cell, filled in zip(cells, given, strict=True)]
    values = np.array([np.nan if number is None else number for number in numbers], dtype=np.float64)
    return values, np.array(given, dtype=bool) & ~np.isfinite(values)


@dataclass
class CsvBlock:
    """Consecutive data rows of a CSV body: (row, cells) with the header's column names."""

    header: list[str]
    lines: list[tuple[int, list[str]]]

    def __len__(self) -> int:
        return len(self.lines)

    def raw(self, position: int) -> RawRow:
        row, cells = self.lines[position]
        return csv_material(row, self.header, cells)

    def row(self, position: int) -> int:
        return self.lines[position][0]

    def columns(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The rows whose every number cell is a finite number or empty, as raw columns."""
        width, n = len(self.header), len(self.lines)
        fits = np.array([len(cells) <= width for _, cells in self.lines], dtype=bool)
        padded = [cells if len(cells) == width else (cells + [""] * width)[:width] for _, cells in self.lines]
        raw: dict[str, np.ndarray] = {"fractions": np.full((n, len(PHASES)), np.nan)}
        raw |= {name: np.full(n, np.nan) for name in _NUMERIC}
        raw |= {name: np.full(n, "", dtype=object) for name in ("basis", *_LEVELS)}
        usable = fits
        for name, cells in zip(self.header, zip(*padded, strict=True), strict=True):
            if name in ALL_TARGETS:
                continue
            if name in _NUMERIC or name in PHASES:
                values, unusable = _numbers(cells)
                usable &= ~unusable
                if name in PHASES:
                    raw["fractions"][:, PHASES.index(name)] = values
                else:
                    raw[name] = values
            else:
                raw[name] = np.array([cell.strip() for cell in cells], dtype=object)
        positions = np.flatnonzero(usable)
        return positions, {name: column[positions] for name, column in raw.items()}


def _csv_blocks(header: list[str], rows: Iterator[list[str]]) -> Callable[[int], Iterator[Block]]:
    def blocks(size: int) -> Iterator[Block]:
        numbered = enumerate(rows)
        while lines := list(itertools.islice(numbered, size)):
            yield CsvBlock(header, lines)

    return blocks


def _rows(text: str) -> Iterator[list[str]]:
    # newline="": the reader itself ends rows at \n, \r\n or a bare \r (a bare \r in an unquoted cell
    # was a csv.Error, a 500, under StringIO's default newline handling; found by tests/test_fuzz_api.py)
    try:
        yield from csv.reader(io.StringIO(text, newline=""))
    except csv.Error as exc:  # a cell over the csv module's field size limit (128 KiB)
        raise MalformedBody(f"CSV body could not be read: {exc}") from None


def _data_rows(text: str) -> Iterator[list[str]]:
    return (cells for cells in _rows(text) if any(c.strip() for c in cells))


def _blank(cells: list[str]) -> bool:
    """A line with nothing but blanks (a line of empty cells, ",,,", is a row: it counts)."""
    return not cells or (len(cells) == 1 and not cells[0].strip())


# A line break followed by blank lines: runs of them, read by the regular expression engine's loop
# in C, become one break (16 MB of newlines: 0.04 s, against 16 s for the csv reader and the row
# filter in Python). A quoted cell that holds line breaks may lose its blank lines: no valid cell does.
_BLANK_LINES = re.compile(r"[\r\n][\r\n \t]*[\r\n]")


def csv_job(body: bytes, options: BatchOptions, max_rows: int) -> Job:
    """Rows decoded lazily from the text, one block at a time; the header and the count are checked
    first, the count stopping at ``max_rows`` + 1 rows (blank lines are not rows)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedBody("CSV body is not valid UTF-8") from None
    # every row ends a line (\n, \r\n or \r): a text of at most max_rows line breaks cannot hold more rows
    breaks = text.count("\n") + text.count("\r")
    if breaks > max_rows:
        text = _BLANK_LINES.sub("\n", text)
    rows = _data_rows(text)
    header = next(rows, None)
    if header is None:
        raise MalformedBody("CSV body is empty; expected a header row and one material per row")
    names = _header(header)
    count = breaks
    if breaks > max_rows:
        lines = itertools.islice(_rows(text), max_rows + 4)  # the header, the rows, a blank line at each end
        count = sum(1 for cells in lines if not _blank(cells)) - 1
    if count > max_rows:
        raise too_many_rows(max_rows)
    return Job(options, min(count, max_rows), _csv_blocks(names, rows))


# ---- out


def _accepted(header: str) -> list[tuple[str, float]]:
    """(media range, q) of an Accept or Accept-Encoding header, in the order given."""
    ranges = []
    for part in header.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                q = _number(value) or 0.0
        if name:
            ranges.append((name.lower(), q))
    return ranges


def wants_gzip(accept_encoding: str) -> bool:
    return any(name in ("gzip", "*") and q > 0 for name, q in _accepted(accept_encoding))


class JsonEncoder:
    """``{"results": [...], "summary": {...}}``, written as the rows are done."""

    media_type = "application/json"

    def __init__(self, targets: tuple[str, ...]):
        self._first = True

    def head(self) -> bytes:
        return b'{"results":['

    def rows(self, outcomes: list[Outcome]) -> bytes:
        if not outcomes:
            return b""
        joined = b",".join(orjson.dumps(o) for o in outcomes)
        prefix, self._first = (b"" if self._first else b","), False
        return prefix + joined

    def chunk(self, done: ChunkOutcomes) -> bytes:
        return self.rows(done.outcomes())

    def tail(self, summary: dict[str, Any]) -> bytes:
        return b'],"summary":' + orjson.dumps(summary) + b"}"


class NdjsonEncoder:
    """One result per line as the rows are done, then ``{"summary": {...}}``."""

    media_type = "application/x-ndjson"

    def __init__(self, targets: tuple[str, ...]):
        pass

    def head(self) -> bytes:
        return b""

    def rows(self, outcomes: list[Outcome]) -> bytes:
        return b"".join(orjson.dumps(o) + b"\n" for o in outcomes)

    def chunk(self, done: ChunkOutcomes) -> bytes:
        return self.rows(done.outcomes())

    def tail(self, summary: dict[str, Any]) -> bytes:
        return orjson.dumps({"summary": summary}) + b"\n"


# A cell with one of these is quoted by the writer (a superset of what it quotes: delimiter,
# quote character, line breaks): a line of cells without them is the cells joined by commas.
_QUOTED = re.compile('[,"\r\n]')


def float_text(values: np.ndarray) -> list[str]:
    """Each row of a 2-D float array as the CSV writer writes its floats (repr, comma-separated).
    orjson writes the same shortest round-trip digits, ~20x faster, wherever repr writes no
    exponent (0, or 1e-4 <= |x| < 1e16; checked by the tests); a row with another value, or a
    NaN, is written with repr."""
    if not len(values):
        return []
    text = orjson.dumps(np.ascontiguousarray(values, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
    lines = text.decode()[2:-2].split("],[")
    magnitude = np.abs(values)
    plain = np.all((magnitude == 0.0) | ((magnitude >= 1e-4) & (magnitude < 1e16)), axis=1)
    for i in np.flatnonzero(~plain).tolist():
        lines[i] = ",".join(map(repr, values[i].tolist()))
    return lines


# The build's cells of a ballistic row (api.prediction.responses.build_entry), after the targets'.
BUILD_COLUMNS = ("areal_density", "v50_margin")


def has_build(targets: tuple[str, ...]) -> bool:
    """Rows of the family predicting V50 carry a build (areal density, V50 margin)."""
    return "v50_velocity" in targets


def csv_columns(targets: tuple[str, ...]) -> list[str]:
    per_target = [column for t in targets for column in (t, f"{t}_low", f"{t}_high")]
    build = list(BUILD_COLUMNS) if has_build(targets) else []
    return ["row", "status", *per_target, *build, "warnings", "model_version", "cached", "error"]


def _build_cells(build: dict[str, Any] | None) -> list[Any]:
    return [build[name]["value"] for name in BUILD_COLUMNS] if build else ["", ""]


class CsvEncoder:
    """One line per result: value, low and high per target, warnings joined by "; ", and the
    row's status (200, or its error's) and error message."""

    media_type = "text/csv"

    def __init__(self, targets: tuple[str, ...]):
        self.targets = targets
        self.build = has_build(targets)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")
        self._tail_buffer = io.StringIO()
        self._tail_writer = csv.writer(self._tail_buffer, lineterminator="\n")

    def _take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()

    def head(self) -> bytes:
        self._writer.writerow(csv_columns(self.targets))
        return self._take()

    def _line(self, outcome: Outcome) -> list[Any]:
        if "error" in outcome:
            error = outcome["error"]
            empty = 3 * len(self.targets) + 3 + len(BUILD_COLUMNS) * self.build
            return [outcome["row"], error["status"], *[""] * empty, error["message"]]
        cells: list[Any] = [outcome["row"], 200]
        for target in self.targets:
            entry = outcome["predictions"][target]
            cells += [entry["value"], *(entry["confidence_interval"] or ("", ""))]
        if self.build:
            cells += _build_cells(outcome.get("build"))
        return [*cells, "; ".join(outcome["warnings"]), outcome["model_version"], outcome["cached"], ""]

    def rows(self, outcomes: list[Outcome]) -> bytes:
        self._writer.writerows(self._line(o) for o in outcomes)
        return self._take()

    def _tail(self, fields: list[Any]) -> str:
        """The CSV text of a line's last cells, as the writer writes them."""
        if not any(_QUOTED.search(str(f)) for f in fields):
            return ",".join(map(str, fields)) + "\n"
        self._tail_writer.writerow(fields)
        text = self._tail_buffer.getvalue()
        self._tail_buffer.seek(0)
        self._tail_buffer.truncate()
        return text

    def _answered(self, answers: Answers) -> list[str]:
        """The lines of the rows the runner answered, from its arrays: the text ``_line`` and the
        writer would give for their bodies."""
        out, targets = answers.out, answers.card.targets
        by_target = [targets.index(t) for t in self.targets]
        values = out.values[:, by_target]
        if answers.with_interval:
            triples = np.stack([values, out.lower[:, by_target], out.upper[:, by_target]], axis=2)
            numbers = float_text(triples.reshape(len(values), -1))
        else:  # value, and empty low and high cells
            numbers = [",,,".join(text.split(",")) + ",," for text in float_text(values)]
        tag = answers.card.tag
        builds = [_build_cells(b) if self.build else [] for b in answers.builds]
        return [
            f"{row},200,{text}," + self._tail([*build, "; ".join(warnings), tag, False, ""])
            for row, text, build, warnings in zip(answers.rows, numbers, builds, answers.warnings, strict=True)
        ]

    def chunk(self, done: ChunkOutcomes) -> bytes:
        answered = [] if done.answers is None else self._answered(done.answers)
        for item in done.items:
            if isinstance(item, int):
                self._buffer.write(answered[item])
            else:
                self._writer.writerow(self._line(item))
        return self._take()

    def tail(self, summary: dict[str, Any]) -> bytes:
        return b""


Encoder = JsonEncoder | NdjsonEncoder | CsvEncoder
ENCODERS: dict[str, type[Encoder]] = {
    "application/json": JsonEncoder,
    "application/x-ndjson": NdjsonEncoder,
    "application/ndjson": NdjsonEncoder,
    "text/csv": CsvEncoder,
}


def encoder_for(accept: str, targets: tuple[str, ...]) -> Encoder:
    """The best supported type of the Accept header (JSON for */*, a missing header or none known)."""
    ranked = sorted(_accepted(accept), key=lambda r: -r[1])  # stable: the header's order breaks ties
    chosen = next((name for name, q in ranked if q > 0 and name in ENCODERS), "application/json")
    return ENCODERS[chosen](targets)


class Gzip:
    """gzip of a stream, flushed at each piece so a client reads the rows as they are sent."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, 31)

    def piece(self, data: bytes) -> bytes:
        return self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def end(self) -> bytes:
        return self._deflate.flush()
