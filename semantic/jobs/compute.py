"""Compute metric values into the registry: create a run, claim it, scan, upsert, record.

Exactly-once in effect, whatever the broker does:

* a run is *claimed* with a conditional UPDATE (queued/retrying, or running with an expired
  lease) that bumps ``attempts``; that number is the run's fencing token;
* each chunk's values, revisions and the run's counters are written in ONE transaction that
  first advances ``chunks_done`` with ``WHERE attempts = <token> AND chunks_done = k``: a
  worker whose lease was taken over (it was paused, or presumed dead) writes nothing;
* a re-delivered task resumes after the last committed chunk, and a value row is unique per
  (metric, grain, period, slice), so a retry can only update it;
* runs touching the same (metric, grain) serialize on a ``ComputeLock`` lease.

This module creates and executes runs; the pieces sit beside it: ``claims`` (claim, lease,
fencing, series locks), ``queries`` (the queries a run scans, shared with lineage), ``writes``
(one chunk's fenced upsert) and ``signals`` (run start and end, which lineage listens to).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import InterfaceError as DjangoInterfaceError
from django.db import OperationalError as DjangoOperationalError
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from registry.definitions.issues import did_you_mean
from registry.models import Kind, Release, ReleaseItem
from registry.services.audit import audit_event_create
from semantic.jobs.claims import (
    ComputeTransientError,
    Fenced,
    LeaseHeartbeat,
    jobs_setting,
    lease_renew,
    locks_acquire,
    locks_release,
    run_claim,
)
from semantic.jobs.periods import as_date, canonical_slice, canonical_value, chunks, period_floor
from semantic.jobs.queries import (
    metric_groups,
    metric_sources,
    run_chunk_query,
    run_chunks,
    run_load_filters,
)
from semantic.jobs.signals import (
    compute_run_finished,
    compute_run_requested,
    compute_run_started,
)
from semantic.jobs.writes import chunk_write
from semantic.models import ComputeRun, MetricValue
from semantic.services import compile_metric_query, manifest_for_release, release_resolve
from semantic.warehouse.run import run_compiled
from tally.errors import QueryError, UserError, WarehouseError
from tally.metrics import CHUNK_SECONDS
from tally.signals import signal_send_required

logger = logging.getLogger("tally.jobs")

DEFAULT_LOOKBACK_DAYS = 3
TRANSIENT_CODES = {
    "warehouse_unavailable", "warehouse_timeout", "registry_unavailable", "compute_locked",
    "run_busy",
}  # fmt: skip
# Transient codes that are not failures: waiting for a series lock or for a live duplicate
# spends no retry budget (the holder's lease bounds the wait).
WAITING_CODES = {"compute_locked", "run_busy"}
UNIT_DAYS = {"d": 1.0, "day": 1.0, "days": 1.0, "h": 1 / 24, "hour": 1 / 24, "hours": 1 / 24}
UNIT_DAYS |= {"m": 1 / 1440, "min": 1 / 1440, "minutes": 1 / 1440, "w": 7.0, "week": 7.0}

# What `tally demo` computes (and bench/compute.py times): 30 daily metrics over 8 sources
# that a dashboard shows, all simple or ratio so one query per source group serves them.
DEMO_METRICS = (
    "active_accounts", "daily_active_users", "event_rows", "events_tracked",
    "feature_adopting_accounts", "first_event_at", "first_value_at", "invites_sent",
    "late_events", "reports_created", "tracked_revenue", "trials_started",
    "events_per_active_account", "feature_adoption_rate", "late_event_share",
    "average_invoice_amount", "invoices_issued", "median_invoice_amount", "open_invoice_amount",
    "p90_invoice_amount", "paying_accounts", "revenue", "paid_invoices",
    "average_seats_per_account", "new_accounts", "largest_account_seats", "churned_accounts",
    "gross_mrr_started", "gross_mrr_ended", "signups",
)  # fmt: skip
# The rest of the fixtures' certified metrics, so that every one has values in the demo (not
# replayed: their models have no load-time column to replay by).
DEMO_MORE_METRICS = (
    "arpa", "churned_mrr", "customer_accounts", "logo_retention", "monthly_active_users", "mrr",
    "net_revenue_retention", "new_mrr", "paid_subscriptions", "provisioned_seats",
    "revenue_growth_mom", "seat_utilization", "stickiness", "trial_to_paid_rate_14d",
    "weekly_active_users",
)  # fmt: skip
# Grains the demo stores (day for every metric, month for the monthly charts).
DEMO_GRAINS = ("day", "month")
DEMO_DAYS = 365
DEMO_LATE_DAYS = 2

UNKNOWN_METRIC_MESSAGE = "unknown metric {name!r} in release {release}"
ENQUEUE_FAILED_MESSAGE = "run {run_id} could not be queued ({reason}); {outcome}"
ENQUEUE_REGISTRY_LOST_MESSAGE = (
    "run {run_id}: the registry connection dropped while the run was being queued ({reason}); "
    "{outcome}"
)
MARKED_FAILED = "it is marked failed"
LEFT_FOR_REAPER = "the registry is unreachable: it stays queued and the reaper sends it again"
BAD_RANGE_MESSAGE = "start {start} is after end {end}"


class ComputeEnqueueError(UserError):
    """The run's task could not be sent to the broker; the run is recorded as failed."""

    http_status = 503
    default_code = "broker_unavailable"


@dataclass(frozen=True)
class Progress:
    chunks_done: int
    chunks_total: int
    values_written: int
    values_revised: int


ProgressCallback = Callable[[Progress], None]


# --------------------------------------------------------------------------- create


def lookback_days_for(*, release: Release, metrics: Sequence[str]) -> int:
    """Trailing days a run recomputes: the largest latency/freshness SLA of the contracts of
    the tables the metrics read (whole days, at least one), else DEFAULT_LOOKBACK_DAYS."""
    from registry.definitions.contracts import contract_tables

    manifest = manifest_for_release(release)
    tables = {
        manifest.semantic_models[model].relation[2].lower()
        for name in metrics
        for model in metric_sources(manifest, name)
    }
    specs = ReleaseItem.objects.filter(release=release, definition__kind=Kind.CONTRACT)
    best: float | None = None
    for spec in specs.values_list("version__spec", flat=True):
        if not {t.lower() for t in contract_tables(spec)} & tables:
            continue
        for sla in spec.get("slaProperties") or ():
            if sla.get("property") not in ("latency", "freshness"):
                continue
            try:
                days = float(sla["value"]) * UNIT_DAYS[str(sla.get("unit", "d")).lower()]
            except (KeyError, TypeError, ValueError):
                continue
            best = days if best is None else max(best, days)
    return DEFAULT_LOOKBACK_DAYS if best is None else max(1, math.ceil(best))


@transaction.atomic(durable=True)
def compute_run_create(
    *,
    metrics: Sequence[str],
    grain: str = "day",
    start: dt.date | None = None,
    end: dt.date | None = None,
    slices: Sequence[str] = (),
    release_ref: str | None = None,
    lookback_days: int | None = None,
    chunk_periods: int | None = None,
    as_of: dt.date | None = None,
    trigger: str = "manual",
    enqueue: bool = True,
    acting_user: Any,
) -> ComputeRun:
    """Records a queued run (default range: the trailing lookback window up to today) and
    enqueues its task after commit."""
    release = release_resolve(release_ref)
    manifest = manifest_for_release(release)
    names = sorted({m.strip() for m in metrics if m.strip()})
    if not names:
        raise QueryError("name at least one metric", code="no_metrics", location="metrics")
    for name in names:
        if name not in manifest.metrics:
            raise QueryError(
                UNKNOWN_METRIC_MESSAGE.format(name=name, release=release.name),
                code="unknown_metric",
                location="metrics",
                hint=did_you_mean(name, list(manifest.metrics)),
            )
    if end is None:
        end = timezone.now().date()
    if start is None:
        days = (
            lookback_days
            if lookback_days is not None
            else lookback_days_for(release=release, metrics=names)
        )
        start = end - dt.timedelta(days=days)
    if start > end:
        raise QueryError(
            BAD_RANGE_MESSAGE.format(start=start, end=end),
            code="bad_time_range",
            location="start",
            hint="give --start on or before --end",
        )
    task_id = str(uuid.uuid4())
    run = ComputeRun(
        metrics=names,
        release=release,
        grain=grain,
        start=period_floor(start, grain),
        end=end,
        slices=list(slices),
        as_of=as_of,
        trigger=trigger,
        chunks_total=sum(1 for _ in chunks(start, end, grain, chunk_periods)),
        timings={"chunk_periods": chunk_periods} if chunk_periods else {},
        warehouse=settings.WAREHOUSE.display_url[:300],
        celery_task_id=task_id if enqueue else "",
        # The reaper's clock starts now: should the message never be sent (the process dies
        # or the registry drops between this commit and the send), the run is sent again.
        enqueued_at=timezone.now() if enqueue else None,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    run.full_clean()
    run.save()
    audit_event_create(
        actor=acting_user,
        action="compute_run.create",
        object_kind="compute_run",
        object_name=str(run.pk),
        release=release,
        payload={"metrics": names, "grain": grain, "start": str(run.start), "end": str(end)},
    )
    if enqueue:
        transaction.on_commit(lambda: _request_run(run.pk, task_id))
    return run


def _request_run(run_id: int, task_id: str) -> None:
    try:
        signal_send_required(
            compute_run_requested, sender=ComputeRun, run_id=run_id, task_id=task_id
        )
    except Exception as exc:
        # The broker refused the message (down, unreachable): a run nobody will ever pick up
        # must not sit `queued`; it is failed with the reason, and the caller told cleanly.
        logger.warning("run %s: could not be queued: %s: %s", run_id, type(exc).__name__, exc)
        reason = f"{type(exc).__name__}: {exc}"
        raise _enqueue_failed(
            run_id,
            message=ENQUEUE_FAILED_MESSAGE,
            reason=reason,
            code="broker_unavailable",
            hint="check that the broker (CELERY_BROKER_URL) is up, then run the command again",
        ) from exc
    try:
        ComputeRun.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    except (DjangoOperationalError, DjangoInterfaceError) as exc:
        # The registry dropped while the run was being queued (issue 23: a traceback, and a
        # run left `queued`). Its message went out, but this command can no longer follow
        # it: the run is failed on a fresh connection (a worker's claim skips a failed run)
        # and the caller told to run the command again.
        logger.warning("run %s: registry dropped while queueing: %s", run_id, exc)
        raise _enqueue_failed(
            run_id,
            message=ENQUEUE_REGISTRY_LOST_MESSAGE,
            reason=f"{type(exc).__name__}: {exc}".strip(),
            code="registry_unavailable",
            hint="check that the registry (DATABASE_URL) is reachable, then run the command "
            "again; `tally runs` lists what was recorded",
        ) from exc


def _enqueue_failed(run_id: int, *, message: str, reason: str, code: str, hint: str) -> UserError:
    """Fails a run that could not be queued and returns the error to raise. The registry
    connection may be the thing that broke: one more try on a fresh connection; when that
    fails too the run stays `queued` with its ``enqueued_at`` (set when it was created), so
    the reaper sends it again once the registry is back."""
    for attempt in range(2):
        error = ComputeEnqueueError(
            message.format(run_id=run_id, reason=reason, outcome=MARKED_FAILED),
            code=code,
            hint=hint,
        )
        try:
            ComputeRun.objects.filter(pk=run_id, status=ComputeRun.Status.QUEUED).update(
                status=ComputeRun.Status.FAILED, error=error.as_body(), finished_at=timezone.now()
            )
            return error
        except (DjangoOperationalError, DjangoInterfaceError):
            db_connection.close()  # the next query opens a new connection
            logger.warning("run %s: could not be marked failed (attempt %s)", run_id, attempt + 1)
    return ComputeEnqueueError(
        message.format(run_id=run_id, reason=reason, outcome=LEFT_FOR_REAPER), code=code, hint=hint
    )


def compute_run_requeue(*, run_id: int) -> str:
    """Sends a queued, retrying or orphaned run's task again under a fresh task id (the
    reaper's re-send); returns the task id. The claim makes duplicates harmless."""
    task_id = str(uuid.uuid4())
    ComputeRun.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    signal_send_required(compute_run_requested, sender=ComputeRun, run_id=run_id, task_id=task_id)
    return task_id


# --------------------------------------------------------------------------- execute


def compute_run_execute(
    *,
    run_id: int,
    task_id: str = "",
    final_attempt: bool = True,
    heartbeat: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ComputeRun:
    """Claims the run and computes its remaining chunks; idempotent (a finished run, or one a
    live attempt holds, is left alone). Raises ComputeTransientError, after recording it, when
    the caller should retry later; permanent errors are stored on the run as ``failed``.

    ``final_attempt`` means no retry can follow (in-process runs); otherwise a transient
    failure fails the run only once TALLY_COMPUTE_MAX_RETRIES failures came in a row (a
    committed chunk resets the count; lock waits are not failures). ``heartbeat`` renews the
    lease from a thread (a real worker; tests in one transaction cannot share it)."""
    run, status = run_claim(run_id, task_id)
    if run is None:
        if status == ComputeRun.Status.RUNNING:
            # A live attempt holds the lease (a duplicate delivery): look again after it.
            raise ComputeTransientError(
                f"run {run_id} is being computed by another worker",
                code="run_busy",
                retry_in=jobs_setting("TALLY_COMPUTE_LEASE_S", 60),
            )
        return ComputeRun.objects.get(pk=run_id)
    token = run.attempts
    _signal(compute_run_started, run)
    try:
        with LeaseHeartbeat(run, token) if heartbeat else contextlib.nullcontext():
            _lock_and_compute(run, token, on_progress)
    except Fenced:
        logger.warning("run %s: attempt %s was taken over; stopping", run_id, token)
        return ComputeRun.objects.get(pk=run_id)
    except (DjangoOperationalError, DjangoInterfaceError) as exc:
        # The registry connection dropped (backend terminated, failover): transient. The
        # chunk in flight rolled back; a fresh connection records the retry.
        db_connection.close()
        logger.warning("run %s: registry error, will retry: %s", run_id, exc)
        _transient(
            run, token, final_attempt,
            ComputeTransientError(
                f"registry connection lost: {type(exc).__name__}: {exc}".strip(),
                code="registry_unavailable", retry_in=0,
            ),
        )  # fmt: skip
    except (WarehouseError, ComputeTransientError) as exc:
        if exc.code not in TRANSIENT_CODES:
            _finish(run_id, token, ComputeRun.Status.FAILED, error=exc.as_body())
        else:
            _transient(run, token, final_attempt, exc)
    except UserError as exc:
        _finish(run_id, token, ComputeRun.Status.FAILED, error=exc.as_body())
    except Exception as exc:
        logger.exception("run %s failed", run_id)
        body = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
        _finish(run_id, token, ComputeRun.Status.FAILED, error={**body, "hint": None})
    else:
        _finish(run_id, token, ComputeRun.Status.SUCCEEDED, error=None)
    finished = ComputeRun.objects.select_related("release").get(pk=run_id)
    _signal(compute_run_finished, finished)
    return finished


def _lock_and_compute(run: ComputeRun, token: int, on_progress: ProgressCallback | None) -> None:
    waited = time.perf_counter()
    try:
        locks_acquire(run, token)
    except BaseException:
        locks_release(run)  # what it took before giving up
        raise
    run.timings = {
        **run.timings,
        "locked_at": timezone.now().isoformat(),
        "lock_wait_s": round(time.perf_counter() - waited, 4),
    }
    ComputeRun.objects.filter(pk=run.pk, attempts=token).update(timings=run.timings)
    try:
        _compute_chunks(run, token, on_progress)
    finally:
        locks_release(run)


def _transient(
    run: ComputeRun, token: int, final_attempt: bool, exc: WarehouseError | ComputeTransientError
) -> None:
    """Records a transient error and raises it for the task to retry, or fails the run when
    no retry may follow (in-process, or the budget of failures in a row is spent)."""
    waiting = exc.code in WAITING_CODES
    fresh = ComputeRun.objects.filter(pk=run.pk).values_list("failures_in_a_row", flat=True)
    in_a_row = (fresh.first() or 0) + (0 if waiting else 1)
    budget = int(jobs_setting("TALLY_COMPUTE_MAX_RETRIES", 5))
    if final_attempt or in_a_row > budget:
        _finish(run.pk, token, ComputeRun.Status.FAILED, error=exc.as_body())
        return
    base = jobs_setting("TALLY_COMPUTE_RETRY_BASE_S", 5)
    retry_in = (
        max(getattr(exc, "retry_in", 0) or 0, base)
        if waiting
        else min(base * 2 ** max(in_a_row - 1, 0), jobs_setting("TALLY_COMPUTE_RETRY_MAX_S", 60))
    )
    ComputeRun.objects.filter(pk=run.pk, attempts=token).update(
        status=ComputeRun.Status.RETRYING,
        retries=F("retries") + 1,
        failures_in_a_row=in_a_row,
        error=exc.as_body(),
        lease_expires_at=None,
        # Due then: the reaper re-sends it if no message brings it back by then (+ grace).
        enqueued_at=timezone.now() + dt.timedelta(seconds=retry_in),
    )
    raise ComputeTransientError(exc.message, code=exc.code, retry_in=retry_in, details=exc.details)


def _signal(signal: Signal, run: ComputeRun) -> None:
    """Tells the apps listening (lineage's OpenLineage events) about the run; a receiver's
    error is logged and never fails the run."""
    for receiver, result in signal.send_robust(sender=ComputeRun, run=run):
        if isinstance(result, Exception):
            logger.error(
                "run %s: receiver %r of a compute run signal failed", run.pk, receiver,
                exc_info=result,
            )  # fmt: skip


def _finish(run_id: int, token: int, status: str, *, error: Any) -> None:
    ComputeRun.objects.filter(pk=run_id, attempts=token).update(
        status=status, error=error, finished_at=timezone.now(), lease_expires_at=None
    )


def _compute_chunks(run: ComputeRun, token: int, on_progress: ProgressCallback | None) -> None:
    from semantic.warehouse.execute import sql_hash

    manifest = manifest_for_release(run.release)
    groups = metric_groups(manifest, run.metrics)
    versions = _metric_versions(run.release, run.metrics)
    dialect = settings.WAREHOUSE.dialect
    timeout_s = jobs_setting("TALLY_COMPUTE_TIMEOUT_S", 300)
    loads = run_load_filters(run)
    hashes: list[str] = []
    for index, (first, last) in enumerate(run_chunks(run)):
        if index < run.chunks_done:
            continue  # committed by an earlier attempt
        lease_renew(run, token)
        started = time.perf_counter()
        computed: dict[tuple[str, dt.date, str], tuple[str | None, dict[str, Any]]] = {}
        rows_returned = 0
        for group in groups:
            query = run_chunk_query(
                run=run, manifest=manifest, group=group, first=first, last=last, loads=loads,
                dialect=dialect,
            )  # fmt: skip
            compiled = compile_metric_query(query=query, release_ref=run.release.name)
            hashes.append(sql_hash(compiled.sql))
            result = run_compiled(
                compiled,
                principal=None,
                release_ref=run.release.name,
                timeout_s=timeout_s,
                row_cap=10_000_000,
            )
            rows_returned += result.row_count
            width = 1 + len(run.slices)
            for row in result.rows:
                period = as_date(row[0])
                # Widening to whole periods (and cumulative windows) can return periods
                # outside the chunk; each chunk owns only its own.
                if not first <= period <= last:
                    continue
                plain, digest = canonical_slice(dict(zip(run.slices, row[1:width], strict=True)))
                for name, raw in zip(group, row[width:], strict=True):
                    computed[(name, period, digest)] = (canonical_value(raw), plain)
        scan_s = time.perf_counter() - started
        chunk_write(
            run, token, index, first, last, computed, versions, rows_returned, len(groups), scan_s
        )
        CHUNK_SECONDS.observe(time.perf_counter() - started)
        if on_progress is not None:
            fresh = ComputeRun.objects.get(pk=run.pk)
            on_progress(
                Progress(
                    fresh.chunks_done,
                    fresh.chunks_total,
                    fresh.values_written,
                    fresh.values_revised,
                )
            )
    if hashes:
        # One hash names the whole run's SQL (all groups, all chunks) for the run list.
        ComputeRun.objects.filter(pk=run.pk, attempts=token).update(
            sql_hash=sql_hash("\n".join(hashes))
        )


def _metric_versions(release: Release, metrics: Sequence[str]) -> dict[str, int]:
    rows = ReleaseItem.objects.filter(
        release=release, definition__kind=Kind.METRIC, definition__name__in=list(metrics)
    ).values_list("definition__name", "version_id")
    return dict(rows)


def demo_values_ensure(*, end: dt.date, acting_user: Any) -> str:
    """Computes DEMO_METRICS at DEMO_GRAINS over the demo's last DEMO_DAYS once (in-process), after a
    replay of the last week as the warehouse held it DEMO_LATE_DAYS earlier, so that the late
    arrivals show up as revisions; a later demo start finds the values and does nothing."""
    if MetricValue.objects.exists():
        return f"reusing {MetricValue.objects.count():,} stored values"
    manifest = manifest_for_release(release_resolve(None))
    metrics = [m for m in DEMO_METRICS if m in manifest.metrics]
    if not metrics:
        return "no demo metrics in this release"
    more = [m for m in DEMO_MORE_METRICS if m in manifest.metrics]
    earlier = compute_run_create(
        metrics=metrics, start=end - dt.timedelta(days=6), end=end,
        as_of=end - dt.timedelta(days=DEMO_LATE_DAYS), trigger="demo", enqueue=False,
        acting_user=acting_user,
    )  # fmt: skip
    earlier = compute_run_execute(run_id=earlier.pk)
    if earlier.status != ComputeRun.Status.SUCCEEDED:
        return f"replay run {earlier.pk} {earlier.status}: {(earlier.error or {}).get('message')}"
    metrics += more
    written = revised = 0
    for grain in DEMO_GRAINS:
        run = compute_run_create(
            metrics=metrics, grain=grain, start=end - dt.timedelta(days=DEMO_DAYS - 1), end=end,
            chunk_periods=DEMO_DAYS, trigger="demo", enqueue=False, acting_user=acting_user,
        )  # fmt: skip
        run = compute_run_execute(run_id=run.pk)
        if run.status != ComputeRun.Status.SUCCEEDED:
            return f"run {run.pk} {run.status}: {(run.error or {}).get('message')}"
        written += run.values_written
        revised += run.values_revised
    return (
        f"{written:,} values of {len(metrics)} metrics by {' and '.join(DEMO_GRAINS)}, "
        f"{revised} revised by late arrivals"
    )
