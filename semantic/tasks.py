"""Celery tasks of the semantic app: thin wrappers that take ids and call one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from registry.models import Release
from semantic.jobs.compute import ComputeTransientError, compute_run_execute
from semantic.jobs.signals import compute_run_requested

logger = logging.getLogger(__name__)


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


@receiver(post_save, sender=Release)
def _release_backfills(sender: Any, instance: Release, created: bool, **kwargs: Any) -> None:
    # Stored values of a metric whose numbers this release changes (a new major version) are
    # recomputed under it, in the background; the pages say which version is shown meanwhile.
    if created and getattr(settings, "TALLY_BACKFILL_ON_RELEASE", True) and not kwargs.get("raw"):
        release_pk = instance.pk
        transaction.on_commit(lambda: _backfill_after_publish(release_pk), robust=True)


def _backfill_after_publish(release_pk: int) -> None:
    from semantic.jobs.backfill import backfill_stale

    try:
        runs = backfill_stale(release=Release.objects.get(pk=release_pk))
    except Exception:  # a backfill must never fail a publish; `tally compute` can redo it
        logger.exception("queueing the backfill of release %s failed", release_pk)
        return
    if runs:
        logger.info("release %s: %d backfill run(s) queued", release_pk, len(runs))


def _refresh_after_publish(schema: str, release_name: str) -> None:
    try:
        publish_views.delay(schema, release_name)
    except Exception:  # views must never fail a publish; the next one rewrites them all
        logger.exception("publishing views of %s failed", release_name)
