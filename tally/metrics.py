"""Prometheus metrics of every Tally process (``prometheus-client``).

The metric objects live here, below every floor, so the code that does the work records it
where it happens: the web middleware (request latency), query execution (queries, warehouse
errors), the compile cache (hits and misses), compute chunks (durations) and the SQL API
(open connections). Run states are read from the registry when /ops/metrics is scraped.

Several processes (gunicorn workers) share one exposition when PROMETHEUS_MULTIPROC_DIR
names a directory they all write to (prometheus-client's multiprocess mode). The worker
and the SQL API serve their own metrics on TALLY_WORKER_METRICS_PORT /
TALLY_SQL_METRICS_PORT when those are set.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

REQUEST_SECONDS = Histogram(
    "tally_http_request_seconds",
    "HTTP request latency by route and status class",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUERIES = Counter("tally_queries_total", "Metric queries executed", ["interface", "outcome"])
COMPILE_CACHE = Counter("tally_compile_cache_total", "Compile cache lookups", ["result"])
RESULT_CACHE = Counter("tally_result_cache_total", "Result cache lookups", ["result"])
KEY_PROBES = Counter(
    "tally_key_probes_total", "Join-key uniqueness probes run on the warehouse", ["outcome"]
)
WAREHOUSE_ERRORS = Counter("tally_warehouse_errors_total", "Warehouse errors by code", ["code"])
CHUNK_SECONDS = Histogram(
    "tally_compute_chunk_seconds",
    "Duration of one compute chunk (scan and write)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
SQL_CONNECTIONS = Gauge(
    "tally_sqlapi_connections", "Open SQL API client connections", multiprocess_mode="livesum"
)
SQL_EXECUTIONS = Gauge(
    "tally_sqlapi_executions",
    "SQL API metric queries by pool state (running holds a slot, waiting is queued)",
    ["state"],
    multiprocess_mode="livesum",
)
SQL_EXECUTIONS_PEAK = Gauge(
    "tally_sqlapi_executions_peak",
    "Most SQL API metric queries ever running at once in this process",
    multiprocess_mode="livemax",
)
SQL_REFUSED = Counter(
    "tally_sqlapi_refused_total", "SQL API queries refused by the pool", ["sqlstate"]
)
RUNS_REAPED = Counter("tally_compute_runs_reaped_total", "Orphaned compute runs re-sent")


def metrics_exposition(extra: CollectorRegistry | None = None) -> bytes:
    """The text exposition of this process (all processes in multiprocess mode)."""
    from prometheus_client import REGISTRY

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    return text + (generate_latest(extra) if extra is not None else b"")


def metrics_serve(port_setting: str) -> bool:
    """Starts a /metrics HTTP server for a non-web process when its port env var is set."""
    raw = os.environ.get(port_setting, "").strip()
    if not raw:
        return False
    start_http_server(int(raw), addr=os.environ.get("TALLY_METRICS_ADDR", "127.0.0.1"))
    return True
