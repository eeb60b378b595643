"""Sliding windows shared between worker processes.

Each process appends (unix time, value) pairs to its own ring, a small memory-mapped file in
a directory all workers of one ``bentoml serve`` share (PROMETHEUS_MULTIPROC_DIR). Readers
open every ring of a series and keep the entries inside the window, so percentiles and
throughput cover the whole service, not the worker that happened to answer. Appending is two
float stores and an index bump: cheap enough for every request.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

CAPACITY = 16384  # entries per process and series: > 60 s at 250 req/s per worker


class Ring:
    """One process's ring for one series (e.g. latency of /predict/mechanical)."""

    def __init__(self, directory: Path | str | None, series: str, capacity: int = CAPACITY):
        self.capacity = capacity
        if directory is None:  # not under bentoml serve: a private in-memory ring
            self._data = np.zeros((capacity + 1, 2))
        else:
            path = Path(directory) / f"armor_ring_{series}_{os.getpid()}.bin"
            self._data = np.memmap(path, dtype=np.float64, mode="w+", shape=(capacity + 1, 2))
        # appends store through a flat memoryview of the same memory: three float stores, without
        # building an array from a tuple or numpy's (memmap) indexing on every request
        self._flat = self._data.data.cast("B").cast("d")
        self._count = 0

    def append(self, value: float, now: float | None = None) -> None:
        at = 2 * (self._count % self.capacity + 1)
        self._flat[at] = time.time() if now is None else now
        self._flat[at + 1] = value
        self._count += 1
        self._flat[0] = self._count  # header: how many were ever written

    def rows(self, since: float) -> np.ndarray:
        return _recent(self._data, self.capacity, since)


def _recent(data: np.ndarray, capacity: int, since: float) -> np.ndarray:
    """(time, value) rows written at or after ``since``."""
    count = int(data[0, 0])
    rows = np.array(data[1 : 1 + min(count, capacity)])
    return rows[rows[:, 0] >= since]


def read_series(
    directory: Path | None, series: str, window_s: float, local: Ring | None = None, now: float | None = None
) -> np.ndarray:
    """(time, value) rows of ``series`` from every process's ring within the last ``window_s`` s."""
    since = (time.time() if now is None else now) - window_s
    if directory is None:
        return local.rows(since) if local is not None else np.zeros((0, 2))
    parts = []
    for path in Path(directory).glob(f"armor_ring_{series}_*.bin"):
        try:
            mapped = np.memmap(path, dtype=np.float64, mode="r")
        except (OSError, ValueError):  # a ring being created right now
            continue
        data = np.asarray(mapped).reshape(-1, 2)
        parts.append(_recent(data, data.shape[0] - 1, since))
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def latency_summary(
    rows: np.ndarray, window_s: float, throughput_window_s: float = 60.0, now: float | None = None
) -> dict:
    """Mean and percentiles in ms of the values (seconds) in the window; throughput (req/s) over the
    last ``throughput_window_s`` seconds."""
    now = time.time() if now is None else now
    recent = int((rows[:, 0] >= now - throughput_window_s).sum()) if rows.size else 0
    out = {"window_s": window_s, "window_requests": int(rows.shape[0]), "throughput_rps": recent / throughput_window_s}
    if rows.size == 0:
        return out | {"mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None}
    p50, p95, p99 = np.percentile(rows[:, 1], [50, 95, 99]) * 1e3
    return out | {
        "mean_ms": float(rows[:, 1].mean() * 1e3),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
    }
