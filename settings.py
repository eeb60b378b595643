"""Every environment variable the service reads, with its default and unit, in one place, and
the typed groups each layer is given.

``Environment`` reads the documented flat names (``ENABLE_RESPONSE_CACHING``, ``REDIS_URL``, …)
or the same name under the ``ARMOR_`` prefix, which wins. ``load_settings()`` turns it into
``Settings``: one frozen group per layer (``CacheLayerSettings`` per cache, ``RedisSettings``,
``BatchingSettings``, …). The service builds it once where it is assembled (service.py,
runners/services.py) and passes each layer only its group; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, AliasGenerator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from threadpoolctl import threadpool_limits

BYTES_PER_MB = 1_000_000  # SI megabytes, as everywhere in the service's figures


def cpu_cores() -> int:
    """CPU cores this process may use (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def runner_workers() -> int:
    """Half the cores, at least one: the API workers do most of a request's work (HTTP, validation,
    features, response body) and the runner one model call per stacked batch. On 2 cores one
    runner worker gave more cold req/s than two, at 523 MB instead of 681 MB at rest
    (loadtests/side_by_side.py, docs/performance.md)."""
    return max(1, cpu_cores() // 2)


def _environment_names(field_name: str) -> AliasChoices:
    """ARMOR_<NAME> first (a namespace of this service's own), then the documented <NAME>."""
    return AliasChoices(f"ARMOR_{field_name.upper()}", field_name.upper(), field_name)


class Environment(BaseSettings):
    """The flat environment: each field is read from ARMOR_<NAME>, else from the documented
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
        default_factory=runner_workers,
        ge=1,
        description="worker processes of the runner service (default: half the CPU cores, at least 1)",
    )
    api_workers: int = Field(
        default_factory=cpu_cores, ge=1, description="worker processes of the API service (default: CPU cores)"
    )
    mechanical_model_tag: str | None = Field(None, description="pin the mechanical model (tag or version)")
    ballistic_model_tag: str | None = Field(None, description="pin the ballistic model (tag or version)")
    hardness_model_tag: str | None = Field(None, description="pin the hardness model (tag or version)")
    model_cache_max_mb: float = Field(256.0, gt=0, description="memory budget of lazily loaded model versions, MB")
    max_request_bytes: int = Field(65536, gt=0, description="largest accepted request body, bytes")
    max_batch_size: int = Field(64, ge=1, description="most rows an API worker stacks into one runner call")
    max_batch_rows: int = Field(10_000, ge=1, description="most materials in one request to a /batch route")
    max_batch_request_bytes: int = Field(
        16 * 1024 * 1024, gt=0, description="largest accepted request body of a /batch route, bytes"
    )
    max_decompression_ratio: float = Field(
        256.0,
        ge=1,
        description="a gzip body of a /batch route may inflate to this many times its size (and to 1 MiB "
        "whatever its size), never past MAX_BATCH_REQUEST_BYTES; more is 413 (a decompression bomb)",
    )
    coalesce_in_flight: int = Field(
        1,
        ge=1,
        description="runner calls of one kind (family, version, explain) an API worker keeps on the wire at "
        "once; requests that miss the caches meanwhile are stacked into the next call",
    )
    runner_hop: Literal["socket", "bentoml"] = Field(
        "socket",
        description="how the API workers send rows to the runner's default models: `socket` (raw float64 "
        "rows over a Unix socket per runner worker, runners/hop.py) or `bentoml` (BentoML's client); "
        "pinned versions and model cards always use BentoML's client",
    )
    body_read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="a single-material request's body must arrive within this many seconds, else 408 "
        "(slow or stalled clients)",
    )
    header_read_timeout_s: float = Field(
        10.0,
        ge=0,
        description="a request's line and headers must arrive within this many seconds of the connection "
        "opening or of the request's first byte, else 408 and the connection is closed (a new connection "
        "that sends nothing is closed silently); 0 turns it off",
    )
    header_max_bytes: int = Field(
        32 * 1024, ge=1024, description="largest request line and headers together, bytes; more is 431"
    )
    header_max_count: int = Field(100, ge=8, description="most header fields in a request; more is 431")
    api_keys: str | None = Field(
        None, description="comma-separated keys; when set, the prediction routes need X-API-Key with one of them"
    )
    rate_limit_per_minute: int | None = Field(
        None,
        ge=1,
        description="prediction requests per key (or client address) per rolling minute, counted over every API "
        "worker of the instance (and every instance with CACHE_BACKEND=redis)",
    )
    trusted_proxies: str = Field(
        "",
        description="comma-separated addresses or networks (10.0.0.0/8) of the proxies whose X-Forwarded-For "
        "names the client (the rate limit's address); empty: the header is never believed",
    )
    access_log: bool = Field(
        False, description="a JSON access line for every request, of every route and status, with its request id"
    )
    runner_unavailable_s: float = Field(
        5.0,
        gt=0,
        description="a runner call that has not answered within this many seconds fails the request with 503 "
        "and Retry-After (a paused, stuck or restarting runner), instead of the 30 s request timeout",
    )
    readiness_check_s: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="/readyz asks the runner whether it is ready and waits at most this many seconds for the "
        "answer; no answer in time is 503 naming the reason (so /readyz always answers within 1 s)",
    )
    shutdown_grace_s: float = Field(
        5.0,
        ge=0,
        description="after SIGTERM, /readyz answers 503 at once but the service keeps accepting and serving "
        "requests for this many seconds, so load balancers stop sending before the listener closes",
    )
    shutdown_timeout_s: float = Field(
        30.0,
        gt=0,
        description="after the grace period, requests in flight (single, batch, NDJSON, hardness) have this "
        "many seconds to finish before the API workers are killed; the runner stops after the API workers",
    )
    drain_file: str | None = Field(
        None,
        description="set by bentoml serve (serving/control.py): the file whose presence tells the workers "
        "the instance is draining after SIGTERM",
    )
    tracing: bool = Field(
        False,
        description="OpenTelemetry spans through BentoML's tracing configuration (an exporter is configured "
        "with BentoML's own settings); off: no span is made, the W3C traceparent is still carried",
    )
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
    enable_feature_caching: bool = Field(
        True,
        description="feature cache keyed by the normalised material (pinned versions and the /batch routes; "
        "the runner featurises the default model's single predictions)",
    )
    feature_cache_size: int = Field(10000, ge=1, description="feature cache entries")
    feature_cache_ttl: float = Field(3600.0, gt=0, description="feature cache TTL, s")
    feature_cache_max_mb: float = Field(32.0, gt=0, description="feature cache memory cap, MB")
    machine_shared_cache: bool = Field(
        False,
        description="with CACHE_BACKEND=memory, share the response layer between the API workers of one "
        "machine (a SQLite file in MACHINE_CACHE_DIR); off by default: a read and a share of a write on "
        "every miss cost the cold path ~10 % of its throughput (docs/performance.md, Tuning), and a "
        "repeat landing on the other API worker is answered by the runner's prediction cache instead",
    )
    machine_cache_dir: str | None = Field(
        None,
        description="directory of the machine-shared SQLite file (default: `armor_machine_cache` next to "
        "the directory bentoml serve gives its workers)",
    )
    cache_backend: Literal["memory", "redis"] = Field("memory", description="memory or redis")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL when CACHE_BACKEND=redis")
    redis_timeout_ms: float = Field(50.0, gt=0, le=1000, description="cap on each Redis call, ms")
    prometheus_multiproc_dir: str | None = Field(
        None, description="set by bentoml serve: the directory all workers share for metrics and windows"
    )
    sweep_interval_s: float = Field(30.0, gt=0, description="how often expired cache entries are swept, s")
    # design search
    design_max_evaluations: int = Field(
        20_000, ge=1, description="most candidates one POST /api/v1/design may evaluate (its max_evaluations cap)"
    )
    design_max_seconds: float = Field(
        25.0,
        gt=0,
        description="longest one POST /api/v1/design may search, s (its max_seconds cap and default; below the "
        "30 s request timeout)",
    )
    performance_window_s: float = Field(300.0, gt=0, description="sliding window of /api/v1/performance, s")
    # prediction log (predlog/)
    prediction_log: bool = Field(
        False,
        description="record every answered prediction in the prediction log (off by default: on a saturated "
        "two-core machine it costs 0-7 % of throughput and its writer process 2-6 % of the CPU, "
        "docs/prediction-log.md)",
    )
    database_url: str = Field(
        "sqlite:///var/prediction_log.sqlite3",
        pattern=r"^(sqlite:///.+|postgres(ql)?://.+)$",
        description="the prediction log's database: `sqlite:///<path>` (a file, relative to the working "
        "directory; `sqlite:////abs/path` for an absolute one) or `postgresql://user:pass@host:port/db` "
        "(shared by every instance of a cluster)",
    )
    database_pool_size: int = Field(
        4,
        ge=1,
        description="connections to PostgreSQL per process using the log: the instance's writer process (writes) "
        "and each API worker (reads: the query routes, warm-up, drift)",
    )
    prediction_log_queue: int = Field(
        10_000,
        ge=1,
        description="log rows an API worker holds before handing them to the writer (the writer process holds as "
        "many per API worker); beyond it rows are dropped (counted)",
    )
    prediction_log_batch_rows: int = Field(500, ge=1, description="most log rows written in one transaction")
    prediction_log_flush_s: float = Field(
        0.5, gt=0, description="how often an API worker hands its queue to the writer, and the writer writes, s"
    )
    prediction_log_sample: float = Field(
        1.0, ge=0, le=1, description="share of a /batch request's rows recorded (single predictions: all)"
    )
    prediction_log_retention_days: float = Field(
        90.0, ge=0, description="log rows older than this are deleted (hourly); 0 keeps them forever"
    )
    predictive_warmup_top: int = Field(
        300,
        ge=0,
        description="on start-up and when a new default model serves, the most requested materials of the "
        "last PREDICTIVE_WARMUP_WINDOW_S (from the log) are computed and cached; 0 turns it off",
    )
    predictive_warmup_window_s: float = Field(86_400.0, gt=0, description="the warm-up's look-back window, s")
    predictive_warmup_timeout_s: float = Field(30.0, gt=0, description="the warm-up stops after this long, s")
    predictive_warmup_ready_wait_s: float = Field(
        5.0, ge=0, description="start-up (and so /readyz) waits for the warm-up at most this long, s; it goes on after"
    )
    sweep_prefetch_points: int = Field(
        0,
        ge=0,
        description="when three requests of a worker walk one input in even steps, this many next points "
        "are computed in the background (4 is a good value); 0, the default, turns it off: it computes "
        "answers nobody asked for yet, and the cold benchmark's own traffic is such a walk",
    )
    drift_window_s: float = Field(86_400.0, gt=0, description="the drift report's window of logged inputs, s")
    prediction_log_socket: str | None = Field(
        None,
        description="set by bentoml serve (serving/log_writer.py): the Unix socket of the instance's prediction "
        "log writer process, to which the API workers hand their entries",
    )
    drift_reference_csv: str = Field(
        "data/reference_materials.csv",
        description="the training table the drift report compares with (its sha256 is checked against the "
        "serving model's dataset_sha256)",
    )


@dataclass(frozen=True)
class CacheLayerSettings:
    """One in-process TTL/LRU cache (response, feature or prediction layer)."""

    enabled: bool
    entries: int
    ttl_s: float
    max_mb: float

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * BYTES_PER_MB)


@dataclass(frozen=True)
class RedisSettings:
    url: str
    timeout_s: float


@dataclass(frozen=True)
class SharedCacheSettings:
    """The response layer shared beyond one process: Redis across instances, or a SQLite file
    shared by the API workers of one machine (``machine_dir``; None when there is no such
    directory, e.g. in-process tests)."""

    backend: Literal["memory", "redis"]
    redis: RedisSettings
    machine_dir: Path | None
    entries: int
    ttl_s: float
    max_bytes: int


@dataclass(frozen=True)
class BatchingSettings:
    """The API worker's batching before the hop (api/prediction/coalescer.py): at most max_batch_size rows a
    runner call, coalesce_in_flight calls of one kind on the wire at once."""

    max_batch_size: int
    coalesce_in_flight: int
    hop: str = "socket"  # RUNNER_HOP: socket (runners/hop.py) or bentoml


@dataclass(frozen=True)
class BatchRouteSettings:
    """The /batch routes (api/batch/routes.py): most materials per request and the body cap that
    replaces MAX_REQUEST_BYTES on those routes. Their rows reach the runners in chunks of
    ``BatchingSettings.max_batch_size``."""

    max_rows: int = 10_000
    max_request_bytes: int = 16 * 1024 * 1024
    max_decompression_ratio: float = 256.0


@dataclass(frozen=True)
class DesignSettings:
    """The design search (design/, POST /api/v1/design): the server's caps on one request's budget."""

    max_evaluations: int = 20_000
    max_seconds: float = 25.0


@dataclass(frozen=True)
class ModelSettings:
    pins: dict[str, str | None]  # family -> pinned tag or version (None: the store's latest)
    cache_max_mb: float


@dataclass(frozen=True)
class ServingSettings:
    port: int
    api_workers: int
    prediction_workers: int
    max_request_bytes: int
    access_log: bool
    admin_token: str | None
    request_timeout_s: float = 30.0  # BentoML traffic timeout of every service
    body_read_timeout_s: float = 10.0
    header_read_timeout_s: float = 10.0  # 0: off
    header_max_bytes: int = 32 * 1024
    header_max_count: int = 100
    runner_unavailable_s: float = 5.0
    readiness_check_s: float = 0.5
    tracing: bool = False


@dataclass(frozen=True)
class ShutdownSettings:
    """What SIGTERM does (serving/drain.py): ``grace_s`` of /readyz 503 with the listener open,
    then at most ``timeout_s`` for the requests in flight; the API workers stop before the runner."""

    grace_s: float = 5.0
    timeout_s: float = 30.0
    drain_file: str | None = None  # set by the serve (serving/control.py); None outside a serve


@dataclass(frozen=True)
class AccessSettings:
    """Who may call the prediction routes and how often (api/transport/access.py); both off by
    default. The rate limit is counted in ``shared_dir``'s sibling (every API worker of a serve)
    and on ``redis`` when CACHE_BACKEND=redis (every instance); ``trusted_proxies`` are the peers
    whose X-Forwarded-For names the client."""

    api_keys: frozenset[str] = frozenset()
    rate_limit_per_minute: int | None = None
    trusted_proxies: tuple[str, ...] = ()
    shared_dir: str | None = None
    redis: RedisSettings | None = None


@dataclass(frozen=True)
class MonitoringSettings:
    shared_dir: str | None  # bentoml serve's directory shared by all workers (metrics, windows)
    performance_window_s: float
    sweep_interval_s: float


@dataclass(frozen=True)
class PredictionLogSettings:
    """The prediction log (predlog/): where, how much is held and written at once, what is kept,
    and the warm-up, sweep prefetch and drift report that read it."""

    enabled: bool = False
    database_url: str = "sqlite:///var/prediction_log.sqlite3"
    pool_size: int = 4
    queue_rows: int = 10_000
    batch_rows: int = 500
    flush_s: float = 0.5
    sample: float = 1.0  # of /batch rows
    retention_days: float = 90.0  # 0: forever
    warmup_top: int = 300
    warmup_window_s: float = 86_400.0
    warmup_timeout_s: float = 30.0
    warmup_ready_wait_s: float = 5.0
    sweep_prefetch_points: int = 0
    drift_window_s: float = 86_400.0
    drift_reference_csv: str = "data/reference_materials.csv"
    # the writer process's socket, set by the serve (serving/log_writer.py); None: rows are written
    # in the API worker's own process (tests, the plain baseline)
    writer_socket: str | None = None


@dataclass(frozen=True)
class Settings:
    serving: ServingSettings
    models: ModelSettings
    batching: BatchingSettings
    response_cache: CacheLayerSettings
    feature_cache: CacheLayerSettings
    prediction_cache: CacheLayerSettings
    shared_cache: SharedCacheSettings
    monitoring: MonitoringSettings
    batch_routes: BatchRouteSettings = BatchRouteSettings()
    access: AccessSettings = AccessSettings()
    design: DesignSettings = DesignSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    prediction_log: PredictionLogSettings = PredictionLogSettings()


def _prediction_log(env: Environment) -> PredictionLogSettings:
    return PredictionLogSettings(
        env.prediction_log,
        env.database_url,
        env.database_pool_size,
        env.prediction_log_queue,
        env.prediction_log_batch_rows,
        env.prediction_log_flush_s,
        env.prediction_log_sample,
        env.prediction_log_retention_days,
        env.predictive_warmup_top,
        env.predictive_warmup_window_s,
        env.predictive_warmup_timeout_s,
        env.predictive_warmup_ready_wait_s,
        env.sweep_prefetch_points,
        env.drift_window_s,
        env.drift_reference_csv,
        env.prediction_log_socket,
    )


def _layer(env: Environment, name: str) -> CacheLayerSettings:
    return CacheLayerSettings(
        enabled=getattr(env, f"enable_{name}_caching"),
        entries=getattr(env, f"{name}_cache_size"),
        ttl_s=getattr(env, f"{name}_cache_ttl"),
        max_mb=getattr(env, f"{name}_cache_max_mb"),
    )


def _machine_dir(env: Environment) -> Path | None:
    if env.cache_backend != "memory" or not env.machine_shared_cache:
        return None
    if env.machine_cache_dir:
        return Path(env.machine_cache_dir)
    if env.prometheus_multiproc_dir:
        return Path(env.prometheus_multiproc_dir).parent / "armor_machine_cache"
    return None


def _shared(env: Environment) -> SharedCacheSettings:
    """Sized from the response layer: ten times its entries and four times its bytes, since it
    holds what all workers computed."""
    return SharedCacheSettings(
        backend=env.cache_backend,
        redis=RedisSettings(env.redis_url, env.redis_timeout_ms / 1e3),
        machine_dir=_machine_dir(env),
        entries=env.response_cache_size * 10,
        ttl_s=env.response_cache_ttl,
        max_bytes=int(env.response_cache_max_mb * BYTES_PER_MB) * 4,
    )


def group(env: Environment) -> Settings:
    return Settings(
        serving=ServingSettings(
            env.port,
            env.api_workers,
            env.prediction_workers,
            env.max_request_bytes,
            env.access_log,
            env.admin_token,
            body_read_timeout_s=env.body_read_timeout_s,
            header_read_timeout_s=env.header_read_timeout_s,
            header_max_bytes=env.header_max_bytes,
            header_max_count=env.header_max_count,
            runner_unavailable_s=env.runner_unavailable_s,
            readiness_check_s=env.readiness_check_s,
            tracing=env.tracing,
        ),
        models=ModelSettings(
            {
                "mechanical": env.mechanical_model_tag,
                "ballistic": env.ballistic_model_tag,
                "hardness": env.hardness_model_tag,
            },
            env.model_cache_max_mb,
        ),
        batching=BatchingSettings(env.max_batch_size, env.coalesce_in_flight, env.runner_hop),
        response_cache=_layer(env, "response"),
        feature_cache=_layer(env, "feature"),
        prediction_cache=_layer(env, "prediction"),
        shared_cache=_shared(env),
        monitoring=MonitoringSettings(env.prometheus_multiproc_dir, env.performance_window_s, env.sweep_interval_s),
        batch_routes=BatchRouteSettings(env.max_batch_rows, env.max_batch_request_bytes, env.max_decompression_ratio),
        access=AccessSettings(
            frozenset(k.strip() for k in (env.api_keys or "").split(",") if k.strip()),
            env.rate_limit_per_minute,
            tuple(p.strip() for p in env.trusted_proxies.split(",") if p.strip()),
            env.prometheus_multiproc_dir,
            RedisSettings(env.redis_url, env.redis_timeout_ms / 1e3) if env.cache_backend == "redis" else None,
        ),
        design=DesignSettings(env.design_max_evaluations, env.design_max_seconds),
        shutdown=ShutdownSettings(env.shutdown_grace_s, env.shutdown_timeout_s, env.drain_file),
        prediction_log=_prediction_log(env),
    )


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; ``overrides`` use the documented names in lower case
    (``load_settings(enable_response_caching=False)``), as tests and the plain baseline do."""
    return group(Environment(**overrides))


def bentoml_service_options(serving: ServingSettings, workers: int) -> dict[str, Any]:
    """Decorator arguments every BentoML service of this project shares (API and runners)."""
    return {
        "workers": workers,
        "traffic": {"timeout": serving.request_timeout_s},
        # BentoML's access log stays off: ACCESS_LOG switches our JSON access line
        # (monitoring/request_id.py), which carries the request id.
        "logging": {"access": {"enabled": False}},
        # OpenTelemetry spans cost ~40 % of a trivial request: made only with TRACING=true, with
        # the exporter of BentoML's tracing configuration.
        "tracing": {} if serving.tracing else {"excluded_urls": [".*"]},
        # /readyz asks the runner itself, within READINESS_CHECK_S (service.py __is_ready__), not
        # through BentoML's probe, which waits up to 5 s for an answer.
        "runner_probe": {"enabled": False},
    }


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@cache
def worker_settings() -> Settings:
    """Set up a serving process once and return its settings (the one object it uses).

    Numeric libraries run single-threaded, so the workers (one per core) do not oversubscribe the
    cores: the variables cover libraries loaded later (and child processes), threadpoolctl the
    BLAS/OpenMP pools already loaded. The GC runs fewer, larger collections: the default
    thresholds made the p99 tail 3-4x the median.
    """
    for variable in _THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    threadpool_limits(limits=int(os.environ["OMP_NUM_THREADS"]))
    gc.set_threshold(50_000, 50, 100)
    return load_settings()
