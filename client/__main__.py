"""Command line: screen a CSV of candidates, search for new ones, or show the service's status.

    python -m client design spec.json -o front.csv
    python -m client screen candidates.csv --family mechanical -o results.csv
    python -m client screen candidates.csv --family ballistic --rank-by v50_velocity --where "density <= 3.3" --top 20
    python -m client status --url http://127.0.0.1:3000
    python -m client log --family mechanical --since 2026-12-01T00:00:00Z --format csv -o log.csv

Global options (--url, --retries, --api-key) go before or after the sub-command. The API key is
read from ARMOR_API_KEY when --api-key is not given (an option is visible to other users in `ps`).
CSV cells are written with --digits significant figures (default 6; 0 for full precision) and
formula-like text (=, +, -, @, tab, CR) is prefixed with a quote unless --no-escape-formulas.

Exit status: 0 done (row errors are in the output's error column), 1 the service refused the
request or the input is unusable, 2 the service could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from client.core import BATCH_FAMILIES, DEFAULT_URL, ArmorClient, ServiceError, ServiceUnreachable
from client.design import run_design, write_csv
from client.screen import DEFAULT_DIGITS, count_rows, screen_csv

console = Console(stderr=True)
API_KEY_ENV = "ARMOR_API_KEY"
ADMIN_TOKEN_ENV = "ARMOR_ADMIN_TOKEN"
LOG_FILTERS = ("since", "until", "family", "model_tag", "material_key", "warning")


def _digits(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (full precision) or more, got {value}")
    return value


def _global_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The options every sub-command takes. Given twice: on the main parser with the defaults, and
    on each sub-command without (argparse.SUPPRESS), so a value after the sub-command is kept and
    its absence does not overwrite one given before it."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--url", default=default(DEFAULT_URL), help=f"service address (default {DEFAULT_URL})")
    parser.add_argument("--retries", type=int, default=default(5), help="retries of a 503 or a refused connection")
    parser.add_argument(
        "--api-key", default=default(None), help=f"sent as X-API-Key (default: ${API_KEY_ENV}, when set)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__.split("\n\n")[0])
    _global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True)
    screen = commands.add_parser("screen", help="predict every row of a CSV (columns of data/reference_materials.csv)")
    _global_options(screen, defaults=False)
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
    digits = screen.add_mutually_exclusive_group()
    precision = f"significant figures of the values (default {DEFAULT_DIGITS}; 0: full precision)"
    digits.add_argument("--digits", type=_digits, default=DEFAULT_DIGITS, help=precision)
    digits.add_argument(
        "--full-precision", dest="digits", action="store_const", const=0, default=DEFAULT_DIGITS, help="--digits 0"
    )
    screen.add_argument(
        "--no-escape-formulas",
        dest="escape_formulas",
        action="store_false",
        help="write cells that begin with = + - @ tab or CR as they came (a spreadsheet runs them as formulas)",
    )
    design = commands.add_parser(
        "design", help="search for candidates (POST /api/v1/design) and write the front as CSV (client/design.py)"
    )
    _global_options(design, defaults=False)
    design.add_argument("spec", help="a design request (JSON file, as in docs/design.md), or - for standard input")
    design.add_argument("-o", "--output", default="-", help="CSV to write (default: standard output)")
    design.add_argument("--digits", type=_digits, default=DEFAULT_DIGITS, help="significant figures (0: full)")
    design.add_argument("--no-progress", action="store_true")
    status = commands.add_parser("status", help="print the service's status")
    _global_options(status, defaults=False)
    _log_parser(commands)
    return parser


def _log_parser(commands: Any) -> None:
    log = commands.add_parser("log", help="read the prediction log (newest first), as JSON lines or CSV")
    _global_options(log, defaults=False)
    for name in LOG_FILTERS:
        log.add_argument(f"--{name.replace('_', '-')}", dest=name, help=f"only rows with this {name}")
    log.add_argument("--limit", type=int, default=100, help="rows per request (1-1000, default 100)")
    log.add_argument("--max-rows", type=int, default=1000, help="stop after this many rows (0: all; default 1000)")
    log.add_argument("--format", choices=("json", "csv"), default="json", help="JSON lines (default) or CSV")
    log.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    log.add_argument("--admin-token", help=f"the service's ADMIN_TOKEN (default: ${ADMIN_TOKEN_ENV}, when set)")


def _log(client: ArmorClient, args: argparse.Namespace) -> int:
    """Pages until --max-rows rows are written or the log ends; CSV keeps the first header row only."""
    filters = {name: getattr(args, name) for name in LOG_FILTERS} | {"limit": args.limit}
    token = args.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None
    as_csv, written = args.format == "csv", 0
    with _opened(args.output, "w", sys.stdout) as out:
        for page, (body, _) in enumerate(client.log_pages(filters, as_csv=as_csv, admin_token=token)):
            header, rows = _log_lines(body, as_csv)
            if page == 0 and header is not None:
                out.write(header + "\n")
            rows = rows[: args.max_rows - written] if args.max_rows else rows
            out.writelines(row + "\n" for row in rows)
            written += len(rows)
            if args.max_rows and written >= args.max_rows:
                break
    console.print(f"{written:,} log rows -> {args.output}")
    return 0


def _log_lines(body: str, as_csv: bool) -> tuple[str | None, list[str]]:
    """A page's header row (CSV) and its rows, one line each."""
    if not as_csv:
        return None, [json.dumps(row) for row in json.loads(body)["predictions"]]
    header, *rows = body.splitlines()
    return header, rows


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
            digits=args.digits,
            escape_formulas=args.escape_formulas,
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


def _design(client: ArmorClient, args: argparse.Namespace) -> int:
    with _opened(args.spec, "r", sys.stdin) as source:
        spec = json.load(source)
    if not isinstance(spec, dict):
        raise ValueError(f"{args.spec}: a design request is a JSON object")
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    progress = Progress(*columns, TextColumn("{task.fields[status]}"), console=console, disable=args.no_progress)
    with progress:
        task = progress.add_task("evaluations", total=spec.get("max_evaluations"), status="")

        def show(event: dict[str, Any]) -> None:
            status = f"feasible {event['feasible']:,}, front {event['front']}, hypervolume {event['hypervolume']:.4g}"
            progress.update(task, completed=event["evaluations"], total=event["max_evaluations"], status=status)

        answer = run_design(client, spec, show)
    with _opened(args.output, "w", sys.stdout) as out:
        written = write_csv(answer, out, args.digits)
    summary = answer["summary"]
    console.print(
        f"{summary['evaluations']:,} evaluations, {summary['feasible']:,} feasible, front of {summary['front']}, "
        f"hypervolume {summary['hypervolume']:.4g}, in {summary['elapsed_s']:.1f} s: {written} rows -> {args.output}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    try:
        with ArmorClient(args.url, retries=args.retries, api_key=api_key) as client:
            if args.command == "status":
                print(json.dumps(client.status(), indent=2))
                return 0
            if args.command == "design":
                return _design(client, args)
            if args.command == "log":
                return _log(client, args)
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
