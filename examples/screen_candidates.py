"""Screen the candidate tiles of examples/candidates.csv for a 7.62 mm threat, as a script.

    make serve                                     # in another terminal
    .venv/bin/python examples/screen_candidates.py [--url http://127.0.0.1:3000]

The same from the command line (a progress bar, results written as they arrive):

    .venv/bin/python -m client screen examples/candidates.csv --family ballistic --id-column sample -o results.csv
    .venv/bin/python -m client screen examples/candidates.csv --family ballistic --id-column sample \\
        --rank-by v50_velocity_low --where "penetration_resistance >= 0.5" --top 5

Row lab-007 has a porosity of 0.5 (the accepted range is 0-0.3): it comes back as its own error
and every other row is still predicted.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's client/, also when not installed

from client import ArmorClient, ServiceUnreachable, screen_csv  # noqa: E402

CANDIDATES = Path(__file__).with_name("candidates.csv")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    url = parser.parse_args().url
    try:
        with ArmorClient(url) as client:
            # 1. every row, in order: value, 95 % interval per target, and the row's error if any
            table = io.StringIO()
            with open(CANDIDATES, newline="") as source:
                summary = screen_csv(client, "ballistic", source, table, id_column="sample")
            print(f"{summary.predicted} predicted, {summary.errors} row errors")
            for row in csv.DictReader(io.StringIO(table.getvalue())):
                if row["status"] != "200":
                    print(f"  {row['sample']}: {row['error']}")

            # 2. screening: the five best by the low end of the V50 interval, among rows that meet a constraint
            params = {"rank_by": "v50_velocity_low", "where": ["penetration_resistance >= 0.5"], "top": 5}
            ranked = io.StringIO()
            with open(CANDIDATES, newline="") as source:
                screen_csv(client, "ballistic", source, ranked, batch_rows=None, params=params, id_column="sample")
            print("best five by the low end of the V50 interval:")
            for row in csv.DictReader(io.StringIO(ranked.getvalue())):
                if row["status"] == "200":
                    print(f"  {row['sample']}: V50 >= {float(row['v50_velocity_low']):.0f} m/s (95 %)")

            # 3. from Python objects: predict_many streams results as the service finishes them
            material = {"composition": {"B4C": 0.7, "TiB2": 0.3}, "processing": {"sintering_temperature": 2050}}
            for result in client.predict_many("mechanical", [material], include_uncertainty=True):
                print("B4C-TiB2 density:", result["predictions"]["density"]["value"], "g/cm3")
    except ServiceUnreachable as exc:
        print(f"error: {exc}; start the service with `make serve`", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
