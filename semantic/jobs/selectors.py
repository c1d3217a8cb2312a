"""READS for runs and stored values (API, CLI and audits)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db.models import Q, QuerySet

from semantic.models import AuditResult, ComputeRun, MetricValue, ValueRevision


def run_list(*, status: str | None = None, metric: str | None = None) -> QuerySet[ComputeRun]:
    """Runs, newest first, optionally by status and by a metric they computed."""
    runs = ComputeRun.objects.select_related("release").order_by("-id")
    if status:
        runs = runs.filter(status=status)
    if metric:
        # JSON containment is not portable to SQLite; metric names never contain quotes.
        runs = runs.filter(metrics__icontains=f'"{metric}"')
    return runs


def run_get(*, run_id: int) -> ComputeRun | None:
    """One run with its release, or None."""
    return ComputeRun.objects.select_related("release").filter(pk=run_id).first()


def value_list(
    *,
    metrics: Sequence[str] = (),
    grain: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    slice_hash: str | None = None,
    exclude_metrics: Sequence[str] = (),
) -> QuerySet[MetricValue]:
    """Current values in key order (metric, grain, period, slice); the unique index serves it."""
    values = MetricValue.objects.select_related("metric_version", "release")
    if metrics:
        values = values.filter(metric_name__in=list(metrics))
    if exclude_metrics:
        values = values.exclude(metric_name__in=list(exclude_metrics))
    if grain:
        values = values.filter(grain=grain)
    if start:
        values = values.filter(period_start__gte=start)
    if end:
        values = values.filter(period_start__lte=end)
    if slice_hash:
        values = values.filter(slice_hash=slice_hash)
    return values.order_by("metric_name", "grain", "period_start", "slice_hash")


def revisions_for_value(*, value_id: int) -> QuerySet[ValueRevision]:
    """Every restatement of one value, newest first."""
    return (
        ValueRevision.objects.filter(value_id=value_id)
        .select_related("old_metric_version", "new_metric_version")
        .order_by("-id")
    )


def audit_result_list(
    *, status: str | None = None, check_name: str | None = None, exclude_metrics: Sequence[str] = ()
) -> QuerySet[AuditResult]:
    """Audit results, newest first, by status and check; without the checks of the stored
    values of ``exclude_metrics`` (targets ``metric/grain/period``)."""
    results = AuditResult.objects.order_by("-id")
    if exclude_metrics:
        hidden = Q()
        for metric in exclude_metrics:
            hidden |= Q(target__startswith=f"{metric}/")
        results = results.exclude(hidden)
    if status:
        results = results.filter(status=status)
    if check_name:
        results = results.filter(check_name=check_name)
    return results
