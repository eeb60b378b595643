"""The prediction log writer's CPU a row, alone: ``--entries`` entries offered to a
``PredictionLog`` on a SQLite file in a temporary directory (its queue as long as ``--entries``,
so none is dropped), then one flush, user and system CPU of this process (the driver's thread
included) around it; ``--flushes`` times in a row, so the file grows. Three kinds of entry, each
a new material but ``repeat``:

- ``computed``: an answer computed for its request, handed over as its columns (predlog/entry.py
  ``columns``: what the service hands over for a new material);
- ``rendered``: an answer from a cache the writer does not know yet, handed over as rendered, a
  real answer of the service (loadtests/mechanical_answer.json, 2.9 KB) that the writer parses;
- ``repeat``: one response key, every entry after the first a reference (no material, no body).

    python -m loadtests.predlog_flush [--entries 20000] [--flushes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from pathlib import Path

import orjson

from monitoring.metrics import Metrics
from predlog.entry import Columns, Entry, canonical_json, columns
from predlog.sqlite import SQLiteStore
from predlog.writer import PredictionLog
from settings import PredictionLogSettings

ANSWER = orjson.loads((Path(__file__).parent / "mechanical_answer.json").read_bytes())
RENDERED = orjson.dumps(ANSWER)
KINDS = ("computed", "rendered", "repeat")
MATERIAL = {
    "composition": {"SiC": 0.7, "B4C": 0.3},
    "processing": {"sintering_temperature": 2100.0, "pressure": 30.0, "holding_time": 60.0},
    "microstructure": {"grain_size": 3.0, "porosity": 0.01},
}


def entry(log: PredictionLog, n: int, kind: str) -> Entry:
    """As the request path makes it (api/prediction/flow.py ``_finish``)."""
    new = kind != "repeat"
    key = f"k{n}" if new else "k0"
    known = log.knows(key)
    material = dict(MATERIAL, microstructure=dict(MATERIAL["microstructure"], porosity=n * 1e-7))
    canonical = None if known else canonical_json(material)
    body: bytes | Columns = b"" if known else columns(ANSWER) if kind == "computed" else RENDERED
    request_id = os.urandom(16).hex()
    return Entry(time.time(), "mechanical", "single", canonical, "m:v1", body, not new, 1.2, None, request_id, key=key)


def cpu_s() -> tuple[float, float]:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime, used.ru_stime


async def flushes(kind: str, entries: int, rounds: int) -> list[tuple[float, float]]:
    """User and system CPU a row (us) of each flush."""
    folder = tempfile.mkdtemp(prefix="predlog-flush-")
    settings = PredictionLogSettings(enabled=True, queue_rows=entries)
    metrics = Metrics()
    log = PredictionLog(settings, metrics, SQLiteStore(Path(folder) / "log.sqlite3"))
    await log.store.open()
    found = []
    for r in range(rounds):
        for i in range(entries):
            log.offer(entry(log, r * entries + i, kind))
        (user, system) = cpu_s()
        await log.flush()
        (user_after, system_after) = cpu_s()
        found.append(((user_after - user) / entries * 1e6, (system_after - system) / entries * 1e6))
    await log.close()
    if metrics.log_written._value.get() != entries * rounds:
        raise RuntimeError(f"{metrics.log_written._value.get():.0f} rows written of {entries * rounds}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--flushes", type=int, default=5)
    args = parser.parse_args()
    for kind in KINDS:
        found = asyncio.run(flushes(kind, args.entries, args.flushes))
        print(f"{kind:8s}", " ".join(f"{user:.1f} user / {system:.1f} system us" for user, system in found))


if __name__ == "__main__":
    main()
