"""Every environment variable the service reads, with its default and unit, in one object.

Built once at start-up (``Settings()``) and passed down; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import gc
import os
from functools import cache

from pydantic import AliasChoices, AliasGenerator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def cpu_cores() -> int:
    """CPU cores this process may use (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _environment_names(field_name: str) -> AliasChoices:
    """ARMOR_<NAME> first (a namespace of this service's own), then the documented <NAME>."""
    return AliasChoices(f"ARMOR_{field_name.upper()}", field_name.upper(), field_name)


class Settings(BaseSettings):
    """Service configuration; each field is read from ARMOR_<NAME>, else from the documented
    upper-case <NAME> (so a host's unrelated PORT or REDIS_URL can be overridden per service)."""

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=_environment_names),
    )

    # serving
    port: int = Field(3000, description="HTTP port of `make serve`")
    prediction_workers: int = Field(
        default_factory=cpu_cores, ge=1, description="worker processes per runner (default: CPU cores)"
    )
    api_workers: int = Field(
        default_factory=cpu_cores, ge=1, description="worker processes of the API service (default: CPU cores)"
    )
    mechanical_model_tag: str | None = Field(None, description="pin the mechanical model (tag or version)")
    ballistic_model_tag: str | None = Field(None, description="pin the ballistic model (tag or version)")
    model_cache_max_mb: float = Field(256.0, gt=0, description="memory budget of lazily loaded model versions, MB")
    max_request_bytes: int = Field(65536, gt=0, description="largest accepted request body, bytes")
    max_batch_size: int = Field(64, ge=1, description="runner adaptive-batching max batch size, rows")
    max_latency_ms: int = Field(
        1000,
        ge=1,
        description="runner adaptive-batching latency budget, ms "
        "(the dispatcher sheds load with 503 when its estimate exceeds it)",
    )
    access_log: bool = Field(False, description="JSON access line per prediction request (costs throughput)")
    admin_token: str | None = Field(
        None,
        description="when set, /api/v1/status and /api/v1/models give details (paths, PIDs, versions, "
        "metrics) only to requests with `Authorization: Bearer <token>`; others get a summary",
    )
    # caching
    enable_response_caching: bool = Field(True, description="response cache in the API service")
    response_cache_size: int = Field(1000, ge=1, description="response cache entries")
    response_cache_ttl: float = Field(3600.0, gt=0, description="response cache TTL, s")
    response_cache_max_mb: float = Field(64.0, gt=0, description="response cache memory cap, MB")
    enable_prediction_caching: bool = Field(True, description="prediction cache in the runners")
    prediction_cache_size: int = Field(10000, ge=1, description="prediction cache entries")
    prediction_cache_ttl: float = Field(1800.0, gt=0, description="prediction cache TTL, s")
    prediction_cache_max_mb: float = Field(64.0, gt=0, description="prediction cache memory cap, MB")
    enable_feature_caching: bool = Field(True, description="feature cache keyed by the normalised material")
    feature_cache_size: int = Field(10000, ge=1, description="feature cache entries")
    feature_cache_ttl: float = Field(3600.0, gt=0, description="feature cache TTL, s")
    feature_cache_max_mb: float = Field(32.0, gt=0, description="feature cache memory cap, MB")
    feature_extraction_workers: int = Field(
        default_factory=cpu_cores, ge=1, description="threads for featurising large inputs"
    )
    machine_shared_cache: bool = Field(
        True,
        description="with CACHE_BACKEND=memory, share the response layer between the API workers of one "
        "machine (SQLite file in the workers' shared directory)",
    )
    cache_backend: str = Field("memory", pattern="^(memory|redis)$", description="memory or redis")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL when CACHE_BACKEND=redis")
    prometheus_multiproc_dir: str | None = Field(
        None, description="set by bentoml serve: the directory all workers share for metrics and windows"
    )
    sweep_interval_s: float = Field(30.0, gt=0, description="how often expired cache entries are swept, s")
    performance_window_s: float = Field(300.0, gt=0, description="sliding window of /api/v1/performance, s")
    redis_timeout_ms: float = Field(50.0, gt=0, le=1000, description="cap on each Redis call, ms")


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@cache
def worker_settings() -> Settings:
    """Set up a serving process once and return its settings (the one object it uses).

    Numeric libraries run single-threaded, so the workers (one per core) do not oversubscribe the
    cores; call this before importing NumPy-backed libraries so OpenMP/BLAS see it. The GC runs
    fewer, larger collections: the default thresholds made the p99 tail 3-4x the median.
    """
    for variable in _THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    gc.set_threshold(50_000, 50, 100)
    return Settings()
