"""The reaper: finds compute runs nobody is working on and sends them again.

A run is orphaned when its worker died (``running`` with an expired lease: nothing renews
it) or when the broker lost its message (``queued`` or ``retrying`` long past the time its
message was sent or due, e.g. Redis restarted without persistence). Beat runs the reaper
every TALLY_COMPUTE_REAP_EVERY_S; each orphan is re-sent under a fresh task id and resumes
after its last committed chunk. Duplicates are harmless: the claim lets one attempt in and
a finished run ignores its late messages.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Q
from django.utils import timezone

from semantic.jobs.claims import jobs_setting
from semantic.jobs.compute import compute_run_requeue
from semantic.models import ComputeRun
from tally.metrics import RUNS_REAPED

logger = logging.getLogger("tally.jobs")


def runs_orphaned(*, now: dt.datetime | None = None) -> list[int]:
    """Ids of runs that no worker holds and no message will bring back, oldest first."""
    now = now or timezone.now()
    grace = dt.timedelta(seconds=jobs_setting("TALLY_COMPUTE_REQUEUE_AFTER_S", 60))
    dead = Q(status=ComputeRun.Status.RUNNING, lease_expires_at__lt=now)
    # enqueued_at is None for in-process runs (no message carries them): never re-sent.
    lost = Q(
        status__in=[ComputeRun.Status.QUEUED, ComputeRun.Status.RETRYING],
        enqueued_at__lt=now - grace,
    )
    return list(ComputeRun.objects.filter(dead | lost).order_by("id").values_list("id", flat=True))


def compute_runs_reap(*, now: dt.datetime | None = None) -> list[int]:
    """Re-sends every orphaned run; returns their ids. A send that fails (broker down) is
    logged and left for the next round: the run keeps its state, nothing is lost."""
    sent: list[int] = []
    for run_id in runs_orphaned(now=now):
        try:
            compute_run_requeue(run_id=run_id)
        except Exception:
            logger.warning("reaper: run %s could not be re-sent", run_id, exc_info=True)
            continue
        logger.info("reaper: run %s re-sent", run_id)
        RUNS_REAPED.inc()
        sent.append(run_id)
    return sent
