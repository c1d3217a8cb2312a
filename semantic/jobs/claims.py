"""Claims, fencing and series locks of compute runs (see semantic.jobs.compute).

A run is claimed with a conditional UPDATE (queued/retrying, or running with an expired lease)
that bumps ``attempts``: that number is the attempt's fencing token. Runs touching the same
(metric, grain) take turns on a ``ComputeLock`` lease row, also by conditional UPDATE, so the
same code serializes them on SQLite and PostgreSQL and a killed worker's lease simply expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import F, Q
from django.utils import timezone

from semantic.models import ComputeLock, ComputeRun
from tally.errors import NotFound, TallyError

logger = logging.getLogger("tally.jobs")


class ComputeTransientError(TallyError):
    """The run could not proceed now (warehouse down or slow, series locked); retry later."""

    default_code = "compute_transient"

    def __init__(self, message: str, *, code: str, retry_in: float, details: Any = None) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_in = retry_in


class Fenced(Exception):
    """Another attempt took the run over; this one must stop without writing."""


def jobs_setting(name: str, default: float) -> float:
    """A TALLY_COMPUTE_* setting (tests and settings.py override the defaults)."""
    return float(getattr(settings, name, default))


def run_claim(run_id: int, task_id: str) -> tuple[ComputeRun | None, str]:
    """Claims the run for one attempt (None and its status when another attempt holds it)."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=jobs_setting("TALLY_COMPUTE_LEASE_S", 60))
    claimable = Q(status__in=[ComputeRun.Status.QUEUED, ComputeRun.Status.RETRYING]) | Q(
        status=ComputeRun.Status.RUNNING, lease_expires_at__lt=now
    )
    updates: dict[str, Any] = {
        "status": ComputeRun.Status.RUNNING,
        "lease_expires_at": lease,
        "attempts": F("attempts") + 1,
    }
    if task_id:
        updates["celery_task_id"] = task_id
    changed = ComputeRun.objects.filter(claimable, pk=run_id).update(**updates)
    run = ComputeRun.objects.filter(pk=run_id).select_related("release").first()
    if run is None:
        raise NotFound(f"no compute run {run_id}", code="run_not_found")
    if changed != 1:
        return None, run.status
    if run.started_at is None:
        ComputeRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    return run, run.status


def lock_keys(run: ComputeRun) -> list[str]:
    """The run's series lock keys, sorted (the order locks are taken in)."""
    return sorted(f"{name}|{run.grain}" for name in run.metrics)


def locks_acquire(run: ComputeRun, token: int) -> None:
    """Takes every (metric, grain) lease of the run, waiting up to TALLY_COMPUTE_LOCK_WAIT_S
    for busy ones: first all at once (one UPDATE), else one by one in sorted order, so two
    runs that overlap cannot each hold what the other waits for."""
    lease_s = jobs_setting("TALLY_COMPUTE_LEASE_S", 60)
    keys = lock_keys(run)
    # A concurrent run may insert the same rows: ignore_conflicts keeps the first.
    ComputeLock.objects.bulk_create([ComputeLock(key=k) for k in keys], ignore_conflicts=True)
    now = timezone.now()
    free = Q(run__isnull=True) | Q(run=run) | Q(expires_at__lt=now)
    expires = now + dt.timedelta(seconds=lease_s)
    if ComputeLock.objects.filter(free, key__in=keys).update(run=run, expires_at=expires) == len(
        keys
    ):
        return
    locks_release(run)
    wait_until = time.monotonic() + jobs_setting("TALLY_COMPUTE_LOCK_WAIT_S", 30)
    for key in keys:
        while True:
            now = timezone.now()
            taken = (
                ComputeLock.objects.filter(key=key)
                .filter(Q(run__isnull=True) | Q(run=run) | Q(expires_at__lt=now))
                .update(run=run, expires_at=now + dt.timedelta(seconds=lease_s))
            )
            if taken == 1:
                break
            if time.monotonic() > wait_until:
                holder = ComputeLock.objects.filter(key=key).values_list("run_id", flat=True)
                raise ComputeTransientError(
                    f"{key.replace('|', ' at grain ')} is being computed by run {holder.first()}",
                    code="compute_locked",
                    retry_in=jobs_setting("TALLY_COMPUTE_RETRY_BASE_S", 5),
                )
            # Waiting is still working on the run: keep its claim alive meanwhile.
            lease_renew(run, token)
            time.sleep(0.2)


def locks_release(run: ComputeRun) -> None:
    """Frees every series lock this run holds."""
    ComputeLock.objects.filter(key__in=lock_keys(run), run=run).update(run=None, expires_at=None)


def lease_renew(run: ComputeRun, token: int) -> None:
    """Extends the run's claim and its locks; raises Fenced when another attempt took over."""
    lease = timezone.now() + dt.timedelta(seconds=jobs_setting("TALLY_COMPUTE_LEASE_S", 60))
    renewed = ComputeRun.objects.filter(pk=run.pk, attempts=token).update(lease_expires_at=lease)
    if renewed != 1:
        raise Fenced()
    ComputeLock.objects.filter(key__in=lock_keys(run), run=run).update(expires_at=lease)


class LeaseHeartbeat:
    """Renews the run's lease from a thread every quarter lease while an attempt works, so a
    short lease (recovery within a minute of a kill -9) never expires under a long chunk.

    The thread dies with its process, which is the point: a killed worker stops renewing and
    the reaper re-sends the run once the lease has expired. A renewal that finds the run taken
    over stops the thread; the attempt itself notices at its next chunk (``lease_renew``
    raises Fenced), before it writes anything.
    """

    def __init__(self, run: ComputeRun, token: int) -> None:
        self.run = run
        self.token = token
        self.interval = jobs_setting("TALLY_COMPUTE_LEASE_S", 60) / 4
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-run-{run.pk}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _beat(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self.interval):
                try:
                    lease_renew(self.run, self.token)
                except Fenced:
                    return
                except DatabaseError:
                    # The registry blinked: try again next beat (the lease outlives 3 misses).
                    logger.warning("run %s: lease renewal failed", self.run.pk, exc_info=True)
                    connection.close()
        finally:
            connection.close()  # this thread's own registry connection
