"""Health checks of the registry database, the warehouse and the broker, for /healthz."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from prometheus_client import CollectorRegistry, Gauge

from semantic.warehouse.connections import warehouse_ping

CHECK_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    latency_ms: float


def _timed(name: str, fn: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail, ok = fn(), True
    except Exception as exc:  # a health check reports any failure instead of raising it
        detail, ok = f"{type(exc).__name__}: {exc}".strip(), False
    return CheckResult(name, ok, detail, round((time.perf_counter() - started) * 1000, 2))


def _check_registry() -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return connection.vendor


def _check_warehouse() -> str:
    warehouse_ping(settings.WAREHOUSE, timeout_s=CHECK_TIMEOUT_S)
    return settings.WAREHOUSE.display_url


def _check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "in-process (CELERY_BROKER_URL unset)"
    from kombu import Connection

    # kombu retries forever by default; a health probe must answer within seconds.
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_TIMEOUT_S)
        transport = conn.transport_cls
    return f"{transport} broker reachable"


CHECKS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("registry", _check_registry),
    ("warehouse", _check_warehouse),
    ("broker", _check_broker),
)


def health_check_all() -> list[CheckResult]:
    """Runs every check; never raises."""
    return [_timed(name, fn) for name, fn in CHECKS]


def run_state_metrics() -> CollectorRegistry:
    """Compute runs by state, read from the registry at scrape time (every process agrees)."""
    from django.db.models import Count

    from semantic.models import ComputeRun

    registry = CollectorRegistry()
    gauge = Gauge("tally_compute_runs", "Compute runs by state", ["state"], registry=registry)
    counts = dict(
        ComputeRun.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    for state in ComputeRun.Status.values:
        gauge.labels(state).set(counts.get(state, 0))
    return registry
