"""What the ``answers`` table's key index costs SQLite a new answer, alone (the sqlite3 module,
no service): ``--answers`` answers written ``--rounds`` times into one growing file, 500 a
transaction, in WAL mode with the writer's settings (predlog/sqlite.py), with the key as the
service stores it (a 24-digit hex TEXT primary key), as a 12-byte BLOB, as an 8-byte INTEGER with
a UNIQUE index, and without any index; user and system CPU a row of each round.

    python -m loadtests.predlog_keys [--answers 20000] [--rounds 8] [--checkpoint-pages 10000]

``--checkpoint-pages``: SQLite's ``wal_autocheckpoint`` (the writer's CHECKPOINT_PAGES by default;
SQLite's own default is 1,000).
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from predlog.entry import ANSWER_COLUMNS
from predlog.sqlite import CHECKPOINT_PAGES, JOURNAL_LIMIT_BYTES

# the answers table's columns after its key, typed as migrations/sqlite/0003_answers.sql types them
COLUMNS = ", ".join(f"{name} {'INTEGER' if name == 'n_warnings' else 'TEXT'} NOT NULL" for name in ANSWER_COLUMNS[1:])
MATERIAL = '{"composition":{"B4C":0.3,"SiC":0.7},"processing":{"sintering_temperature":2100.0,"porosity":%d}}'
OUTPUTS = '{"density":[2.9495223953177185,2.915272772600357,2.9841743943297816]}' * 7  # ~ a real answer's
TRANSACTION_ROWS = 500


def _digest(n: int, size: int) -> bytes:
    return hashlib.blake2b(b"%d" % n, digest_size=size).digest()


KEYS: dict[str, tuple[str, Callable[[int], object]]] = {
    "text primary key (served)": ("answer_key TEXT PRIMARY KEY", lambda n: _digest(n, 12).hex()),
    "12-byte blob primary key": ("answer_key BLOB PRIMARY KEY", lambda n: _digest(n, 12)),
    "8-byte integer, unique": (
        "answer_key INTEGER UNIQUE",
        lambda n: int.from_bytes(_digest(n, 8), "big", signed=True),
    ),
    "no index": ("answer_key TEXT", lambda n: _digest(n, 12).hex()),
}


def rounds(
    key_column: str, key: Callable[[int], object], answers: int, count: int, checkpoint_pages: int = CHECKPOINT_PAGES
) -> list[tuple[float, float]]:
    """User and system CPU a row (us) of each round of ``answers`` new answers."""
    db = sqlite3.connect(Path(tempfile.mkdtemp(prefix="predlog-keys-")) / "keys.sqlite3", isolation_level=None)
    for pragma in (
        "journal_mode = WAL",
        "synchronous = NORMAL",
        f"wal_autocheckpoint = {checkpoint_pages}",
        f"journal_size_limit = {JOURNAL_LIMIT_BYTES}",
    ):
        db.execute(f"PRAGMA {pragma}")
    db.execute(f"CREATE TABLE answers ({key_column}, {COLUMNS})")
    found, n = [], 0
    for _ in range(count):
        rows = []
        for _ in range(answers):
            n += 1
            rows.append((key(n), f"m{n}", MATERIAL % n, "m:v1", OUTPUTS, "[]", 0, '{"include_uncertainty":true}'))
        before = resource.getrusage(resource.RUSAGE_SELF)
        for start in range(0, answers, TRANSACTION_ROWS):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                f"INSERT INTO answers VALUES ({', '.join('?' * len(ANSWER_COLUMNS))}) ON CONFLICT DO NOTHING",
                rows[start : start + TRANSACTION_ROWS],
            )
            db.execute("COMMIT")
        after = resource.getrusage(resource.RUSAGE_SELF)
        found.append(
            ((after.ru_utime - before.ru_utime) / answers * 1e6, (after.ru_stime - before.ru_stime) / answers * 1e6)
        )
    db.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--checkpoint-pages", type=int, default=CHECKPOINT_PAGES)
    parser.add_argument(
        "--keys", default="", help="only the key forms whose name contains one of these (comma-separated)"
    )
    args = parser.parse_args()
    wanted = [w for w in args.keys.split(",") if w]
    for name, (column, key) in KEYS.items():
        if wanted and not any(w in name for w in wanted):
            continue
        found = rounds(column, key, args.answers, args.rounds, args.checkpoint_pages)
        print(f"{name:26s}", " ".join(f"{user:.1f}/{system:.1f}" for user, system in found), "us user/system a row")


if __name__ == "__main__":
    main()
