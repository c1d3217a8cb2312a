"""Celery tasks of the semantic app: thin wrappers that take ids and call one service. The
receivers that enqueue them are in semantic/receivers.py."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

# The configured app must exist before a task is sent: tally/__init__ no longer loads it.
import tally.celery  # noqa: F401
from semantic.jobs.compute import ComputeTransientError, compute_run_execute


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def compute_run(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    """Computes one ComputeRun; retried with backoff only on transient warehouse errors."""
    max_retries = int(getattr(settings, "TALLY_COMPUTE_MAX_RETRIES", 5))
    try:
        compute_run_execute(
            run_id=run_id,
            task_id=self.request.id or "",
            # In-process (no broker) a retry would re-run at once inside the caller's request:
            # the demo records the transient error on the run instead.
            final_attempt=bool(self.request.is_eager) or self.request.retries >= max_retries,
        )
    except ComputeTransientError as exc:
        raise self.retry(exc=exc, countdown=exc.retry_in, max_retries=max_retries) from exc


@shared_task(acks_late=True)
def schedules_dispatch() -> int:
    """Beat calls this every minute: enqueue a compute run for each due metric schedule."""
    from semantic.jobs.schedules import schedules_enqueue_due

    return len(schedules_enqueue_due())


@shared_task(acks_late=True)
def audit_all() -> int:
    """Scheduled audit of every contract, stored series and a reconciliation sample."""
    from semantic.jobs.audits import audit_run

    return len(audit_run(alert=True))


@shared_task(acks_late=True)
def publish_views(schema: str, release: str) -> int:
    """Rewrites the published views of a release (on merge, when configured)."""
    from semantic.published_views import views_publish

    return len(views_publish(schema=schema, release_ref=release))
