"""The prediction log writer's CPU an entry, alone: ``--entries`` entries offered to a
``PredictionLog`` on a SQLite file in a temporary directory, then one flush, user and system CPU
of this process (the driver's thread included) around it; ``--flushes`` times in a row, so the
file grows. ``new``: a new material each (its answer parsed and stored); ``repeat``: one response
key, every entry after the first a reference (no material, no body).

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
from predlog.entry import Entry
from predlog.sqlite import SQLiteStore
from predlog.writer import PredictionLog
from settings import PredictionLogSettings

TARGETS = ("density", "vickers_hardness", "fracture_toughness", "youngs_modulus", "flexural_strength")
BODY = orjson.dumps(
    {
        "predictions": {t: {"value": 3.2, "unit": "GPa", "confidence_interval": [3.1, 3.3]} for t in TARGETS},
        "warnings": [],
        "model_info": {"version": "armor_mechanical:v1"},
    }
)
MATERIAL = {
    "composition": {"SiC": 0.7, "B4C": 0.3},
    "processing": {"sintering_temperature": 2100.0, "pressure": 30.0, "holding_time": 60.0},
    "microstructure": {"grain_size": 3.0, "porosity": 0.01},
}


def entry(log: PredictionLog, n: int, new: bool) -> Entry:
    key = f"k{n}" if new else "k0"
    known = log.knows(key)
    material = dict(MATERIAL, microstructure=dict(MATERIAL["microstructure"], porosity=n * 1e-7))
    canonical = None if known else orjson.dumps(material, option=orjson.OPT_SORT_KEYS)
    body = b"" if known else BODY
    request_id = os.urandom(16).hex()
    return Entry(time.time(), "mechanical", "single", canonical, "m:v1", body, not new, 1.2, None, request_id, key=key)


def cpu_s() -> tuple[float, float]:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime, used.ru_stime


async def flushes(new: bool, entries: int, rounds: int) -> list[tuple[float, float]]:
    """User and system CPU an entry (us) of each flush."""
    folder = tempfile.mkdtemp(prefix="predlog-flush-")
    log = PredictionLog(PredictionLogSettings(enabled=True), Metrics(), SQLiteStore(Path(folder) / "log.sqlite3"))
    await log.store.open()
    found = []
    for r in range(rounds):
        for i in range(entries):
            log.offer(entry(log, r * entries + i, new))
        (user, system) = cpu_s()
        await log.flush()
        (user_after, system_after) = cpu_s()
        found.append(((user_after - user) / entries * 1e6, (system_after - system) / entries * 1e6))
    await log.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--flushes", type=int, default=5)
    args = parser.parse_args()
    for name, new in (("new", True), ("repeat", False)):
        found = asyncio.run(flushes(new, args.entries, args.flushes))
        print(name, " ".join(f"{user:.1f} user / {system:.1f} system us" for user, system in found))


if __name__ == "__main__":
    main()
