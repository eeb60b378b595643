"""The bodies of /api/v1/performance, /api/v1/status and /api/v1/models.

Aggregation across worker processes: counters, histograms and gauges are read through
prometheus_client's MultiProcessCollector from PROMETHEUS_MULTIPROC_DIR (the files every
worker of this ``bentoml serve`` writes), and sliding windows from the shared-memory rings in
the same directory (monitoring.window). Outside ``bentoml serve`` (in-process tests) the
service's own registry and rings are read instead.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

import psutil
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from features.families import ALL_FAMILIES
from model_registry import store
from monitoring import window
from monitoring.metrics import Metrics

CACHE_LAYERS = ("response", "prediction", "feature")
LIBRARIES = ("bentoml", "numpy", "scikit-learn", "pydantic", "fastapi", "redis", "psutil")


def read_samples(metrics: Metrics, shared_dir: str | None) -> dict[tuple, float]:
    """{(sample name, sorted label items): value}, summed over processes where that is the mode."""
    registry = metrics.registry
    if shared_dir:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=shared_dir)
    samples: dict[tuple, float] = defaultdict(float)
    for metric in registry.collect():
        for s in metric.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] += s.value
    return samples


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def cache_layer(samples: dict, layer: str) -> dict:
    hits, misses = (
        _value(samples, "armor_cache_hits_total", layer=layer),
        _value(samples, "armor_cache_misses_total", layer=layer),
    )
    lookups = hits + misses
    return {
        "cache_size": int(_value(samples, "armor_cache_entries", layer=layer)),
        "hits": int(hits),
        "misses": int(misses),
        "hit_rate_percent": round(100.0 * hits / lookups, 2) if lookups else 0.0,
        "evictions": int(_value(samples, "armor_cache_evictions_total", layer=layer)),
        "expirations": int(_value(samples, "armor_cache_expirations_total", layer=layer)),
        "memory_usage_mb": _value(samples, "armor_cache_memory_bytes", layer=layer) / 1e6,
    }


def _histogram(samples: dict, name: str, **labels) -> tuple[int, float]:
    return int(_value(samples, f"{name}_count", **labels)), _value(samples, f"{name}_sum", **labels)


def _summed(samples: dict, name: str, **labels) -> float:
    """The sum of ``name``'s series whose labels include ``labels`` (over the labels not given)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= set(have))


def batching(samples: dict, shared_dir: str | None, window_s: float, local_rings: dict) -> dict:
    out = {}
    for family in ALL_FAMILIES:
        count, rows = _histogram(samples, "armor_runner_batch_size", family=family)
        recent = window.read_series(_dir(shared_dir), f"batch_{family}", window_s, local_rings.get(family))
        sizes = recent[:, 1]
        out[family] = {
            "batches": count,
            "rows": int(rows),
            "mean_batch_size": rows / count if count else None,
            "window_batches": int(sizes.size),
            "window_mean": float(sizes.mean()) if sizes.size else None,
            "window_max": int(sizes.max()) if sizes.size else None,
        }
    return out


def model_cache(samples: dict) -> list[dict]:
    rows = []
    for (name, labels), value in samples.items():
        if name == "armor_model_memory_bytes":
            label = dict(labels)
            rows.append(
                {
                    "family": label["family"],
                    "version": label["tag"],
                    "pid": int(label.get("pid", 0) or 0),
                    "memory_mb": value / 1e6,
                }
            )
    return sorted(rows, key=lambda r: (r["family"], r["pid"], r["version"]))


def _dir(shared_dir: str | None) -> Path | None:
    return Path(shared_dir) if shared_dir else None


def predictions(samples: dict, shared_dir: str | None, window_s: float, rings: dict) -> dict:
    out = {}
    for family in ALL_FAMILIES:
        # summed over the model tags that answered
        count = int(_summed(samples, "armor_request_duration_seconds_count", endpoint=family))
        total = _summed(samples, "armor_request_duration_seconds_sum", endpoint=family)
        errors = sum(
            v
            for (n, labels), v in samples.items()
            if n == "armor_requests_total"
            and dict(labels).get("endpoint") == family
            and dict(labels).get("status") != "2xx"
        )
        rows = window.read_series(_dir(shared_dir), family, window_s, rings.get(family))
        out[family] = {
            "requests": count,
            "errors": int(errors),
            "mean_ms_all_time": total / count * 1e3 if count else None,
            **window.latency_summary(rows, window_s),
        }
    return out


def performance(
    metrics: Metrics, shared_dir: str | None, window_s: float, rings: dict, batch_rings: dict, response_backend: dict
) -> dict:
    samples = read_samples(metrics, shared_dir)
    layers = {f"{layer}_cache": cache_layer(samples, layer) for layer in CACHE_LAYERS}
    layers["response_cache"] |= response_backend
    if "shared" in response_backend:
        layers["response_cache"]["shared"] = response_backend["shared"] | {
            "errors_total": int(_value(samples, "armor_shared_cache_errors_total"))
        }
    fe_count, fe_sum = _histogram(samples, "armor_feature_extraction_seconds")
    return {
        **layers,
        "predictions": predictions(samples, shared_dir, window_s, rings),
        "feature_extraction": {
            "count": fe_count,
            "total_seconds": fe_sum,
            "mean_ms": fe_sum / fe_count * 1e3 if fe_count else None,
        },
        "batching": batching(samples, shared_dir, window_s, batch_rings),
        "model_cache": model_cache(samples),
        "aggregation": (f"all worker processes: Prometheus multiprocess files and shared-memory rings in {shared_dir}")
        if shared_dir
        else "this process only (not under bentoml serve)",
    }


def prediction_log(samples: dict) -> dict:
    """Log rows written and dropped, summed over the worker processes and the log's writer process
    (predlog/writer.py, predlog/handover.py)."""
    dropped = {
        r: int(_value(samples, "armor_prediction_log_dropped_total", reason=r))
        for r in ("queue_full", "database", "forgotten", "writer")
    }
    return {"written_total": int(_value(samples, "armor_prediction_log_written_total")), "dropped_total": dropped}


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


class ProcessMonitor:
    """CPU and memory of the service's processes (this worker's parent, the bentoml serve arbiter,
    and all its descendants). psutil's cpu_percent(None) measures since the previous call, so the
    Process objects are kept between calls; nothing here sleeps."""

    def __init__(self, root_pid: int | None = None):
        self.root = psutil.Process(root_pid or os.getppid())
        self._procs: dict[int, psutil.Process] = {}
        self._machine_times = psutil.cpu_times()
        self.processes()

    def processes(self) -> list[psutil.Process]:
        """The current process tree, without dead (zombie) processes: a killed worker that its
        parent has not reaped yet is not part of the service any more. A process seen for the first
        time gets its CPU baseline now."""
        current = [p for p in [self.root, *self.root.children(recursive=True)] if _alive(p)]
        known = {}
        for proc in current:
            if proc.pid not in self._procs:
                with contextlib.suppress(psutil.Error):
                    proc.cpu_percent(None)
            known[proc.pid] = self._procs.get(proc.pid, proc)
        new = set(known) - set(self._procs)
        self._procs = known
        self._new = new
        return list(known.values())

    def _cpu(self, proc: psutil.Process) -> float | None:
        """Percent of one core since the previous snapshot; None for a process first seen now."""
        return None if proc.pid in self._new else proc.cpu_percent(None)

    def _machine_cpu(self) -> float:
        """Machine CPU percent since the previous snapshot, from cpu_times deltas (psutil's module-level
        cpu_percent(None) baseline is shared with every other caller in the process)."""
        now = psutil.cpu_times()
        busy = lambda t: sum(t) - t.idle - getattr(t, "iowait", 0.0)  # noqa: E731
        total = sum(now) - sum(self._machine_times)
        percent = 100.0 * (busy(now) - busy(self._machine_times)) / total if total > 0 else 0.0
        self._machine_times = now
        return percent

    def snapshot(self) -> dict:
        rows = []
        for proc in self.processes():
            try:
                with proc.oneshot():
                    rows.append(
                        {
                            "pid": proc.pid,
                            "name": _process_name(proc.cmdline()),
                            "rss_mb": proc.memory_info().rss / 1e6,
                            "cpu_percent": self._cpu(proc),
                        }
                    )
            except psutil.NoSuchProcess:
                continue
        memory = psutil.virtual_memory()
        return {
            "processes": rows,
            "total_rss_mb": sum(r["rss_mb"] for r in rows),
            "total_cpu_percent": sum(r["cpu_percent"] or 0.0 for r in rows),
            "cpu_percent_since": "the previous /api/v1/status call of this worker (null: first sight)",
            "machine": {
                "cpu_percent": self._machine_cpu(),
                "cpu_count": psutil.cpu_count(),
                "memory_total_mb": memory.total / 1e6,
                "memory_available_mb": memory.available / 1e6,
                "memory_percent": memory.percent,
            },
        }


def _process_name(cmdline: list[str]) -> str:
    """'<service>#<worker id>' for BentoML workers, 'bentoml serve' for the arbiter."""

    def arg(flag: str) -> str | None:
        return cmdline[cmdline.index(flag) + 1] if flag in cmdline[:-1] else None

    service = arg("--service-name")
    return f"{service}#{arg('--worker-id')}" if service else " ".join(cmdline[1:3])[:60]


def versions(service_version: str) -> dict:
    return {"service": service_version, "python": platform.python_version(), **{lib: version(lib) for lib in LIBRARIES}}


def uptime_s(monitor: ProcessMonitor) -> float:
    return time.time() - monitor.root.create_time()


def models(serving: dict[str, str]) -> dict:
    """Families, their stored versions (newest first) with stored metrics, and the one serving."""
    out = {}
    for family in ALL_FAMILIES:
        stored = store.list_models(family)
        out[family] = {
            "serving": serving.get(family),
            "versions": [
                {
                    "tag": str(m.tag),
                    "version": m.tag.version,
                    "created_at": m.info.metadata.get("created_at"),
                    "samples": m.info.metadata.get("samples"),
                    "metrics": m.info.metadata.get("metrics"),
                    "serving": str(m.tag) == serving.get(family),
                }
                for m in stored
            ],
        }
    return out
