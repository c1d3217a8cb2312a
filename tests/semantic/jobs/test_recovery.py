"""Self-healing compute runs in-process: the reaper, the retry budget and enqueue failures
(the same paths on a real worker and broker are in tests/integration/test_worker_faults.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from semantic.jobs.compute import (
    ComputeEnqueueError,
    ComputeTransientError,
    compute_run_create,
    compute_run_execute,
)
from semantic.jobs.reaper import compute_runs_reap, runs_orphaned
from semantic.models import ComputeRun
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT

START, END = dt.date(2026, 9, 1), dt.date(2026, 9, 30)


def queued(**kwargs: object) -> ComputeRun:
    return compute_run_create(
        metrics=["revenue"], start=START, end=END, enqueue=False, acting_user=None, **kwargs
    )


def fresh_pool(app: Any) -> None:
    """Forgets the app's broker pools so the next send connects to the current broker_url
    (kombu keeps one pool per URL, so the default broker's pool is found again after)."""
    app._pool = None
    app.amqp._producer_pool = None


def test_reaper_finds_expired_leases_and_overdue_messages_only(synced: Path) -> None:
    """Orphans are runs whose lease expired or whose message is overdue; a live lease, a fresh
    message and an in-process run (no message at all) are left alone."""
    now = timezone.now()
    dead = queued()
    ComputeRun.objects.filter(pk=dead.pk).update(
        status="running", lease_expires_at=now - dt.timedelta(seconds=1)
    )
    live = queued()
    ComputeRun.objects.filter(pk=live.pk).update(
        status="running", lease_expires_at=now + dt.timedelta(seconds=30)
    )
    lost = queued()
    ComputeRun.objects.filter(pk=lost.pk).update(enqueued_at=now - dt.timedelta(minutes=5))
    fresh = queued()
    ComputeRun.objects.filter(pk=fresh.pk).update(enqueued_at=now)
    in_process = queued()  # enqueued_at stays None
    due_later = queued()
    ComputeRun.objects.filter(pk=due_later.pk).update(
        status="retrying", enqueued_at=now + dt.timedelta(seconds=20)
    )
    assert runs_orphaned(now=now) == [dead.pk, lost.pk]
    assert in_process.pk not in runs_orphaned(now=now + dt.timedelta(days=1))


def test_reaper_resends_an_orphan_which_resumes_after_its_last_chunk(synced: Path) -> None:
    """A run left `running` at 1/3 chunks by a dead worker is re-sent and completes; the
    committed chunk is not computed again (values_written counts each value once)."""
    whole = compute_run_execute(run_id=queued(chunk_periods=10).pk)
    assert whole.status == "succeeded" and whole.chunks_total == 3
    run = queued(chunk_periods=10)
    stopped = {"chunks": 0}

    def die_after_first_chunk(progress: object) -> None:
        stopped["chunks"] += 1
        raise KeyboardInterrupt  # the worker dies between chunks

    with pytest.raises(KeyboardInterrupt):
        compute_run_execute(run_id=run.pk, on_progress=die_after_first_chunk)
    orphan = ComputeRun.objects.get(pk=run.pk)
    assert (orphan.status, orphan.chunks_done) == ("running", 1)
    ComputeRun.objects.filter(pk=run.pk).update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    # No broker in tests: the task runs in-process as soon as the reaper sends it.
    assert compute_runs_reap() == [run.pk]
    done = ComputeRun.objects.get(pk=run.pk)
    assert (done.status, done.chunks_done, done.attempts) == ("succeeded", 3, 2)
    assert done.enqueued_at is not None
    assert compute_runs_reap() == []


def test_retry_budget_counts_failures_in_a_row_and_progress_resets_it(
    synced: Path, settings: Settings, tmp_path: Path
) -> None:
    """Issue 23: five warehouse blips spread over a run used to fail it for good (the budget
    never reset). Failures only count in a row: a committed chunk starts the count again."""
    settings.TALLY_COMPUTE_MAX_RETRIES = 5
    good = settings.WAREHOUSE
    missing = parse_warehouse_url(f"duckdb:///{tmp_path / 'gone.duckdb'}", base_dir=ROOT)
    run = queued(chunk_periods=10)

    def blip(times: int) -> None:
        settings.WAREHOUSE = missing
        for _ in range(times):
            with pytest.raises(ComputeTransientError) as info:
                compute_run_execute(run_id=run.pk, final_attempt=False)
            assert info.value.code == "warehouse_unavailable"

    blip(4)
    assert ComputeRun.objects.get(pk=run.pk).failures_in_a_row == 4

    def fail_after_first_chunk(progress: object) -> None:
        settings.WAREHOUSE = missing

    settings.WAREHOUSE = good
    with pytest.raises(ComputeTransientError):
        compute_run_execute(run_id=run.pk, final_attempt=False, on_progress=fail_after_first_chunk)
    after = ComputeRun.objects.get(pk=run.pk)
    assert (after.chunks_done, after.failures_in_a_row, after.retries) == (1, 1, 5)
    blip(4)
    assert ComputeRun.objects.get(pk=run.pk).status == "retrying"
    settings.WAREHOUSE = good
    done = compute_run_execute(run_id=run.pk, final_attempt=False)
    assert (done.status, done.retries, done.failures_in_a_row) == ("succeeded", 9, 0)


def test_budget_spent_in_a_row_fails_the_run(
    synced: Path, settings: Settings, tmp_path: Path
) -> None:
    """One more failure in a row than TALLY_COMPUTE_MAX_RETRIES fails the run with the error."""
    settings.TALLY_COMPUTE_MAX_RETRIES = 2
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{tmp_path / 'x.duckdb'}", base_dir=ROOT)
    run = queued()
    for _ in range(2):
        with pytest.raises(ComputeTransientError):
            compute_run_execute(run_id=run.pk, final_attempt=False)
    failed = compute_run_execute(run_id=run.pk, final_attempt=False)
    assert failed.status == "failed" and failed.error["code"] == "warehouse_unavailable"


def test_waiting_for_a_series_lock_is_not_a_failure(synced: Path, settings: Settings) -> None:
    """Issue 23: lock waits spent the retry budget, so a queued run gave up after ~5 min.
    With a budget of 0 failures, waiting still retries and spends nothing."""
    from semantic.models import ComputeLock

    settings.TALLY_COMPUTE_MAX_RETRIES = 0
    settings.TALLY_COMPUTE_LOCK_WAIT_S = 0.2
    holder = queued()
    ComputeLock.objects.create(
        key="revenue|day", run=holder, expires_at=timezone.now() + dt.timedelta(minutes=5)
    )
    waiting = queued()
    for _ in range(3):
        with pytest.raises(ComputeTransientError) as info:
            compute_run_execute(run_id=waiting.pk, final_attempt=False)
        assert info.value.code == "compute_locked"
    stalled = ComputeRun.objects.get(pk=waiting.pk)
    assert (stalled.status, stalled.retries, stalled.failures_in_a_row) == ("retrying", 3, 0)


def test_a_run_the_broker_refuses_is_failed_not_left_queued(
    synced: Path, django_capture_on_commit_callbacks: object
) -> None:
    """Issue 23: with the broker down `tally compute` printed a traceback and left a `queued`
    run forever. The send fails cleanly (broker_unavailable) and the row says so."""
    from semantic.tasks import compute_run

    conf = compute_run.app.conf
    saved = (conf.task_always_eager, conf.broker_url, conf.broker_connection_timeout)
    conf.task_always_eager = False
    conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    conf.broker_connection_timeout = 1
    fresh_pool(compute_run.app)
    try:
        with (
            pytest.raises(ComputeEnqueueError) as info,
            django_capture_on_commit_callbacks(execute=True),  # type: ignore[operator]
        ):
            compute_run_create(
                metrics=["revenue"], start=START, end=END, enqueue=True, acting_user=None
            )
    finally:
        conf.task_always_eager, conf.broker_url, conf.broker_connection_timeout = saved
        fresh_pool(compute_run.app)
    assert info.value.code == "broker_unavailable" and "CELERY_BROKER_URL" in (
        info.value.hint or ""
    )
    (run,) = ComputeRun.objects.all()
    assert run.status == "failed" and run.error["code"] == "broker_unavailable"
