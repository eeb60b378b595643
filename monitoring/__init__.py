"""Service-wide figures: Prometheus metrics (multiprocess mode under bentoml serve, so every
worker's values land in one directory and are summed), sliding-window rings in shared memory,
and the aggregation behind /api/v1/performance and /api/v1/status."""
