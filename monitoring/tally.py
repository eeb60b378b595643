"""The hot Prometheus series, gathered in plain Python and written once a second.

Under ``bentoml serve`` every Prometheus write is a multiprocess value: a lock, a PID check and a
write into a memory-mapped file, ~1 µs an increment and ~2 µs an observation on an idle core. A
cold request made ~10 of them in the API worker (request counter and latency, cache hits, misses,
evictions and sizes) and ~5 per row in the runner (prediction cache, batch size, model time):
~7 % of an API worker's py-spy samples on the cold path (issue 12). ``Tally`` adds them up in
dicts and lists instead; ``flush`` writes the sums (one increment per series, one per touched
histogram bucket, the last value of each gauge) and ``TallyFlusher`` calls it every
``interval_s`` and when its process stops. /metrics therefore lags by up to ``interval_s``; the
service's own reports (/api/v1/performance, /api/v1/status) flush their process first.

Histograms are bucketed here as prometheus_client does (``observe``: the first bucket whose upper
bound is >= the value, plus the sum) and written through its per-bucket values, so the exposed
series are the same as with ``observe`` (tests/test_monitoring_tally.py compares them).
"""

from __future__ import annotations

import bisect
from typing import Any

from caching.periodic import Periodic


class _Pending:
    """Observations of one histogram child since the last flush, by bucket."""

    def __init__(self, child: Any):
        self.bounds: list[float] = list(child._upper_bounds)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def write(self, child: Any) -> None:
        for index, count in enumerate(self.counts):
            if count:
                child._buckets[index].inc(count)
                self.counts[index] = 0
        child._sum.inc(self.total)
        self.total = 0.0


class Tally:
    """Increments, observations and gauge values of Prometheus children (``metric.labels(...)``
    or an unlabelled metric), written by ``flush``."""

    def __init__(self) -> None:
        self._counts: dict[Any, float] = {}
        self._histograms: dict[Any, _Pending] = {}
        self._gauges: dict[Any, float] = {}

    def inc(self, child: Any, amount: float = 1.0) -> None:
        self._counts[child] = self._counts.get(child, 0.0) + amount

    def observe(self, child: Any, value: float) -> None:
        pending = self._histograms.get(child)
        if pending is None:
            pending = self._histograms[child] = _Pending(child)
        pending.add(value)

    def set(self, child: Any, value: float) -> None:
        self._gauges[child] = value

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        gauges, self._gauges = self._gauges, {}
        for child, amount in counts.items():
            if amount:
                child.inc(amount)
        for child, pending in self._histograms.items():
            if pending.total or any(pending.counts):
                pending.write(child)
        for child, value in gauges.items():
            child.set(value)


class TallyFlusher:
    """Flushes ``tally`` every ``interval_s`` seconds on the running loop (caching/periodic.py),
    and once at ``stop``."""

    def __init__(self, tally: Tally, interval_s: float = 1.0):
        self.tally = tally
        self._loop = Periodic(self._flush, interval_s, "metrics flush")

    async def _flush(self) -> None:
        self.tally.flush()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop the loop and write what is left (also when the caller is being cancelled)."""
        try:
            await self._loop.stop()
        finally:
            self.tally.flush()
