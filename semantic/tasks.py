"""Celery tasks of the semantic app: thin wrappers that take ids and call one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db import connection as db_connection
from django.db.models.signals import post_save
from django.dispatch import receiver

from registry.models import Release
from semantic.jobs.compute import ComputeTransientError, compute_run_execute
from semantic.jobs.signals import compute_run_requested

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


@receiver(compute_run_requested, dispatch_uid="semantic.compute_run")
def enqueue_compute_run(sender: Any, *, run_id: int, task_id: str, **kwargs: Any) -> None:
    """A created run asked (after its commit) to be queued under its recorded task id."""
    compute_run.apply_async(args=(run_id,), task_id=task_id)


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


@receiver(post_save, sender=Release)
def _release_published(sender: Any, instance: Release, created: bool, **kwargs: Any) -> None:
    # Opt-in: rewriting warehouse views on every merge needs write access to the warehouse
    # (a DuckDB file must not be held open by a reader at that moment).
    schema = getattr(settings, "TALLY_PUBLISHED_VIEWS_SCHEMA", "")
    if created and schema and not kwargs.get("raw"):
        release_name = instance.name
        transaction.on_commit(lambda: _refresh_after_publish(schema, release_name))


def _refresh_after_publish(schema: str, release_name: str) -> None:
    try:
        publish_views.delay(schema, release_name)
    except Exception:  # views must never fail a publish; the next one rewrites them all
        logger.exception("publishing views of %s failed", release_name)
