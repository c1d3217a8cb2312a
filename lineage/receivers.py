"""What lineage does when the apps below it act (connected in ``LineageConfig.ready``).

* a published release: its lineage is stored, by a task enqueued after commit;
* a compute run claimed or ended (``semantic.jobs.signals``): its OpenLineage START, then
  COMPLETE or FAIL event goes to the configured transport.

The apps below send and never import lineage; imports run one way, from here down.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from registry.models import Release
from semantic.jobs.signals import compute_run_finished, compute_run_started
from semantic.models import ComputeRun

logger = logging.getLogger("tally.lineage")
jobs_logger = logging.getLogger("tally.jobs")


# --------------------------------------------------------------------------- publish hook


@receiver(post_save, sender=Release)
def _release_published(sender: Any, instance: Release, created: bool, **kwargs: Any) -> None:
    # After commit: the release's items are written in the same transaction, after the row.
    if created and not kwargs.get("raw"):
        release_id = instance.pk
        transaction.on_commit(lambda: _update_after_publish(release_id))


def _update_after_publish(release_id: int) -> None:
    from lineage.tasks import update_release_lineage

    try:
        update_release_lineage.delay(release_id)
    except Exception:  # lineage must never fail a publish; the next publish rebuilds it
        logger.exception("lineage update of release %s failed", release_id)


# --------------------------------------------------------------------------- compute runs


@receiver(compute_run_started)
def _run_started(sender: Any, run: ComputeRun, **kwargs: Any) -> None:
    _openlineage_emit(run, "START")


@receiver(compute_run_finished)
def _run_finished(sender: Any, run: ComputeRun, **kwargs: Any) -> None:
    _openlineage_emit(run, "COMPLETE" if run.status == "succeeded" else "FAIL")


def _openlineage_emit(run: ComputeRun, event_type: str) -> None:
    """Sends the run's OpenLineage event when a transport is configured; lineage never fails
    a run (run_event_emit logs its own errors; this guards the import too)."""
    sink = getattr(settings, "TALLY_OPENLINEAGE", None) or {}
    if not (sink.get("url") or sink.get("file")):
        return  # no sink: build nothing (the default; compute runs pay nothing for lineage)
    try:
        from openlineage.client.event_v2 import RunState

        from lineage.openlineage import run_event_emit

        run_event_emit(run=run, event_type=RunState(event_type))
    except Exception:
        jobs_logger.exception("OpenLineage %s event of run %s not sent", event_type, run.pk)
