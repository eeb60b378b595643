"""GET /api/v1/predictions: its query parameters read into a ``Query``, and a page of log rows
as JSON or CSV. Newest first; ``next_cursor`` (opaque) asks for the page after this one, and is
null on the last page."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from predlog.store import SELECTED, Query

MAX_LIMIT = 1000
CSV_COLUMNS = ("id", "time", *(c for c in SELECTED if c not in ("id", "ts", "n_warnings")))
_JSON_COLUMNS = ("material", "outputs", "warnings", "options")


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


class QueryError(ValueError):
    """A query parameter the route cannot use (the HTTP layer answers 422 naming ``field``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _invalid(field: str, message: str) -> QueryError:
    return QueryError(field, message)


def parse_time(field: str, raw: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC when it names no zone)."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(field, "an ISO 8601 time (2026-12-07T12:00:00Z) or unix seconds") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def parse_cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise _invalid("cursor", "the next_cursor of a previous page")
    return int(raw)


def query_of(params: dict[str, str]) -> Query:
    """The filters of the route's query string (unknown parameters are refused: a typo must not
    silently widen an audit query)."""
    known = {"since", "until", "family", "model_tag", "material_key", "warning", "cursor", "limit", "format"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise _invalid(unknown[0], f"unknown parameter; known: {', '.join(sorted(known))}")
    limit_raw = params.get("limit", "100")
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_LIMIT:
        raise _invalid("limit", f"an integer from 1 to {MAX_LIMIT}")
    return Query(
        since=parse_time("since", params["since"]) if "since" in params else None,
        until=parse_time("until", params["until"]) if "until" in params else None,
        family=params.get("family"),
        model_tag=params.get("model_tag"),
        material_key=params.get("material_key"),
        warning=params.get("warning"),
        before_id=parse_cursor(params.get("cursor")),
        limit=int(limit_raw),
    )


def wants_csv(params: dict[str, str], accept: str) -> bool:
    fmt = params.get("format")
    if fmt is not None and fmt not in ("json", "csv"):
        raise _invalid("format", "json or csv")
    return fmt == "csv" or (fmt is None and "text/csv" in accept)


def page(rows: list[tuple[Any, ...]], limit: int) -> Page:
    """The selected rows as the API gives them: JSON columns parsed, the time as ISO 8601 too."""
    out = []
    for values in rows:
        row = dict(zip(SELECTED, values, strict=True))
        for column in _JSON_COLUMNS:
            row[column] = orjson.loads(row[column])
        row["cached"] = bool(row["cached"])
        row.pop("n_warnings")
        row["time"] = datetime.fromtimestamp(row["ts"], UTC).isoformat(timespec="milliseconds")
        out.append(row)
    cursor = str(out[-1]["id"]) if len(out) == limit else None
    return Page(out, cursor)


def to_json(found: Page) -> bytes:
    return orjson.dumps({"predictions": found.rows, "next_cursor": found.next_cursor})


def to_csv(found: Page) -> str:
    """One line per row; the material, outputs and warnings cells hold JSON (and ``cached`` is
    true or false, as in JSON)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in found.rows:
        cells = [row[c] for c in CSV_COLUMNS]
        writer.writerow([orjson.dumps(c).decode() if isinstance(c, dict | list | bool) else c for c in cells])
    return buffer.getvalue()
