"""Celery tasks of the semantic app: thin wrappers that take ids and call one service. The
receivers that enqueue them are in semantic/receivers.py."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db import connection as db_connection

# The configured app must exist before a task is sent: tally/__init__ no longer loads it.
import tally.celery  # noqa: F401
from semantic.jobs.compute import ComputeTransientError, compute_run_execute

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def compute_run(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    """Computes one ComputeRun; transient errors (warehouse, registry, a busy series) are
    retried with backoff, and the run itself keeps the budget (failures in a row)."""
    eager = bool(self.request.is_eager)
    try:
        compute_run_execute(
            run_id=run_id,
            task_id=self.request.id or "",
            # In-process (no broker) a retry would re-run at once inside the caller's request:
            # the demo records the transient error on the run instead.
            final_attempt=eager,
            heartbeat=not eager,
        )
    except ComputeTransientError as exc:
        raise self.retry(exc=exc, countdown=exc.retry_in) from exc
    except (OperationalError, InterfaceError) as exc:
        # The registry was unreachable before the run could even be claimed or recorded:
        # retry on a fresh connection with backoff (the run's lease, if any, expires).
        db_connection.close()
        if eager:
            raise
        base = float(getattr(settings, "TALLY_COMPUTE_RETRY_BASE_S", 5))
        countdown = min(base * 2 ** min(self.request.retries, 6), 60.0)
        logger.warning("run %s: registry unreachable, retrying in %ss: %s", run_id, countdown, exc)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(acks_late=True)
def compute_runs_reap() -> int:
    """Beat calls this every TALLY_COMPUTE_REAP_EVERY_S: re-send orphaned compute runs."""
    from semantic.jobs.reaper import compute_runs_reap as reap

    return len(reap())


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
