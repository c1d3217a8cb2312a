"""Receivers that enqueue the semantic app's tasks, connected by ``SemanticConfig.ready``:
a created compute run is queued; a published release rewrites the published views (opt-in)
and backfills the stored values whose numbers it changes (``semantic.jobs.backfill``).

They import the tasks (and so Celery) when a signal first needs them, not at start-up: a CLI
command that never sends one (`tally compile`) does not pay for importing Celery.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from registry.models import Release
from semantic.jobs.signals import compute_run_requested

logger = logging.getLogger("semantic.tasks")


@receiver(compute_run_requested, dispatch_uid="semantic.compute_run")
def enqueue_compute_run(sender: Any, *, run_id: int, task_id: str, **kwargs: Any) -> None:
    """A created run asked (after its commit) to be queued under its recorded task id."""
    from semantic.tasks import compute_run

    compute_run.apply_async(args=(run_id,), task_id=task_id)


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
        from semantic.tasks import publish_views

        publish_views.delay(schema, release_name)
    except Exception:  # views must never fail a publish; the next one rewrites them all
        logger.exception("publishing views of %s failed", release_name)


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
