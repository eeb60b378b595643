"""Command line: screen a CSV of candidates, or show the service's status.

    python -m client screen candidates.csv --family mechanical -o results.csv
    python -m client screen candidates.csv --family ballistic --rank-by v50_velocity --where "density <= 3.3" --top 20
    python -m client status --url http://127.0.0.1:3000

Exit status: 0 done (row errors are in the output's error column), 1 the service refused the
request or the input is unusable, 2 the service could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from client.core import BATCH_FAMILIES, DEFAULT_URL, ArmorClient, ServiceError, ServiceUnreachable
from client.screen import count_rows, screen_csv

console = Console(stderr=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"service address (default {DEFAULT_URL})")
    parser.add_argument("--retries", type=int, default=5, help="retries of a 503 or a refused connection")
    commands = parser.add_subparsers(dest="command", required=True)
    screen = commands.add_parser("screen", help="predict every row of a CSV (columns of data/reference_materials.csv)")
    screen.add_argument("input", help="CSV file with a header row, or - for standard input")
    screen.add_argument("--family", choices=BATCH_FAMILIES, required=True)
    screen.add_argument("-o", "--output", default="-", help="CSV to write (default: standard output)")
    screen.add_argument("--batch-rows", type=int, default=1000, help="rows per request (default 1000)")
    screen.add_argument("--no-uncertainty", action="store_true", help="leave out the 95 %% intervals")
    screen.add_argument("--model-version", help="registry tag or version (default: the serving model)")
    screen.add_argument("--rank-by", help="screening: a target, or <target>_low/_high; best first")
    screen.add_argument("--order", choices=("descending", "ascending"), default="descending")
    screen.add_argument("--where", action="append", default=[], help='constraint, e.g. "density <= 3.3" (repeatable)')
    screen.add_argument("--top", type=int, help="screening: keep the best K rows")
    screen.add_argument("--id-column", help="a column not sent to the service, copied into the output")
    screen.add_argument("--no-progress", action="store_true")
    commands.add_parser("status", help="print the service's status")
    return parser


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"include_uncertainty": str(not args.no_uncertainty).lower()}
    if args.model_version:
        params["model_version"] = args.model_version
    if args.rank_by:
        params |= {"rank_by": args.rank_by, "order": args.order}
    if args.where:
        params["where"] = args.where
    if args.top:
        params["top"] = args.top
    return params


@contextmanager
def _opened(path: str, mode: Literal["r", "w"], std: TextIO) -> Iterator[TextIO]:
    if path == "-":
        yield std
        return
    with open(path, mode, newline="", encoding="utf-8") as handle:
        yield handle


def _screen(client: ArmorClient, args: argparse.Namespace) -> int:
    params = _params(args)
    screening = any(k in params for k in ("rank_by", "where", "top"))
    total = None if args.input == "-" else count_rows(args.input)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    progress = Progress(*columns, TimeRemainingColumn(), console=console, disable=args.no_progress)
    with progress, _opened(args.input, "r", sys.stdin) as source, _opened(args.output, "w", sys.stdout) as out:
        task = progress.add_task(f"{args.family} rows", total=total)
        summary = screen_csv(
            client,
            args.family,
            source,
            out,
            batch_rows=None if screening else args.batch_rows,  # ranking spans the whole file: one request
            params=params,
            id_column=args.id_column,
            on_rows=lambda n: progress.advance(task, n),
        )
        progress.update(task, completed=summary.rows)  # screening writes only the matched rows
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    kept = f", {summary.predicted + summary.errors:,} written (screened)" if screening else ""
    console.print(
        f"{summary.rows:,} rows{kept}: {summary.predicted:,} predicted, {summary.errors:,} row errors "
        f"(status and error columns) in {summary.seconds:.1f} s ({rate:,.0f} rows/s) -> {args.output}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with ArmorClient(args.url, retries=args.retries) as client:
            if args.command == "status":
                print(json.dumps(client.status(), indent=2))
                return 0
            return _screen(client, args)
    except ServiceUnreachable as exc:
        console.print(f"[red]error:[/red] {exc}; is it running? (make serve, or --url)")
        return 2
    except ServiceError as exc:
        console.print(f"[red]error:[/red] the service refused the request: {exc}")
        return 1
    except (OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
