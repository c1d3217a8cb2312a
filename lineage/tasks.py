"""Celery tasks of the lineage app (thin: ids in, one service call)."""

from __future__ import annotations

from celery import shared_task

# The configured app must exist before a task is sent: tally/__init__ no longer loads it, and
# without it shared_task would send to Celery's default app (a broker on localhost).
import tally.celery  # noqa: F401


@shared_task
def update_release_lineage(release_id: int) -> None:
    """Stores a published release's lineage; idempotent (a second run changes nothing)."""
    from lineage.services import lineage_update
    from registry.models import Release

    release = Release.objects.filter(pk=release_id).first()
    if release is not None:
        lineage_update(release=release)
