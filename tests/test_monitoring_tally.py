"""monitoring/tally.py: what a flush writes is what writing each event would have written."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from monitoring.tally import Tally, TallyFlusher

BUCKETS = (0.001, 0.01, 0.1, 1.0)
VALUES = [0.0, 0.0005, 0.001, 0.002, 0.01, 0.5, 1.0, 3.0, 0.05]  # on, below and above the bounds


def _series(registry: CollectorRegistry) -> list[tuple[str, float]]:
    """(series, value), values to 12 digits: a sum added up in another order differs in the last bit."""
    lines = generate_latest(registry).decode().splitlines()
    return sorted(
        (name.replace("direct", "m").replace("tallied", "m"), float(f"{float(value):.12g}"))
        for name, value in (line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
        if "_created" not in name
    )


def _metrics(name: str, registry: CollectorRegistry) -> tuple[Counter, Histogram, Gauge]:
    return (
        Counter(f"{name}_total", "c", ["layer"], registry=registry),
        Histogram(f"{name}_seconds", "h", ["family"], buckets=BUCKETS, registry=registry),
        Gauge(f"{name}_entries", "g", registry=registry),
    )


def test_a_flush_writes_what_each_event_would_have_written() -> None:
    direct_registry, tallied_registry = CollectorRegistry(), CollectorRegistry()
    counter, histogram, gauge = _metrics("direct", direct_registry)
    t_counter, t_histogram, t_gauge = _metrics("tallied", tallied_registry)
    tally = Tally()
    for index, value in enumerate(VALUES):
        counter.labels("a").inc()
        counter.labels("b").inc(index)
        histogram.labels("x").observe(value)
        gauge.set(index)
        tally.inc(t_counter.labels("a"))
        tally.inc(t_counter.labels("b"), index)
        tally.observe(t_histogram.labels("x"), value)
        tally.set(t_gauge, index)
        if index == 4:
            tally.flush()  # flushes in between add up
    assert _series(tallied_registry) != _series(direct_registry)  # the rest is not written yet
    tally.flush()
    assert _series(tallied_registry) == _series(direct_registry)
    tally.flush()  # nothing new: nothing changes
    assert _series(tallied_registry) == _series(direct_registry)


def test_the_flusher_writes_every_interval_and_at_stop() -> None:
    registry = CollectorRegistry()
    counter = Counter("events_total", "c", registry=registry)
    tally = Tally()

    async def run() -> list[float]:
        flusher = TallyFlusher(tally, interval_s=0.02)
        flusher.start()
        tally.inc(counter)
        await asyncio.sleep(0.1)
        seen = [registry.get_sample_value("events_total") or 0.0]
        tally.inc(counter, 2)
        await flusher.stop()
        return [*seen, registry.get_sample_value("events_total") or 0.0]

    assert asyncio.run(run()) == [1.0, 3.0]


def test_the_flusher_writes_what_is_left_when_its_caller_is_cancelled() -> None:
    registry = CollectorRegistry()
    counter = Counter("events", "events", registry=registry)
    tally = Tally()

    async def run() -> None:
        flusher = TallyFlusher(tally, interval_s=3600.0)
        flusher.start()
        await asyncio.sleep(0)
        tally.inc(counter)
        stopping = asyncio.create_task(flusher.stop())
        await asyncio.sleep(0)  # inside stop(), waiting for the loop to end
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping

    asyncio.run(run())
    assert registry.get_sample_value("events_total") == 1.0
