"""compute_run_create + compute_run_execute in-process on a real DuckDB warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.jobs.queries import metric_groups
from semantic.models import ComputeRun, MetricValue, ValueRevision
from semantic.services import manifest_for_release, release_resolve

START, END = dt.date(2026, 9, 1), dt.date(2026, 9, 30)


def run_once(metrics: list[str], **kwargs: object) -> ComputeRun:
    run = compute_run_create(
        metrics=metrics,
        start=kwargs.pop("start", START),
        end=kwargs.pop("end", END),
        enqueue=False,
        acting_user=None,
        **kwargs,
    )
    return compute_run_execute(run_id=run.pk)


def test_metrics_of_one_source_share_one_query(synced: Path) -> None:
    """Metrics reading the same semantic model are grouped into a single warehouse query."""
    manifest = manifest_for_release(release_resolve(None))
    groups = metric_groups(manifest, ["events_tracked", "daily_active_users", "revenue"])
    assert ("daily_active_users", "events_tracked") in groups
    run = run_once(["events_tracked", "daily_active_users"])
    assert run.status == "succeeded", run.error
    assert run.queries == run.chunks_total == 1


def test_values_equal_a_hand_written_count(synced: Path) -> None:
    """Stored daily values are the warehouse's numbers (events_tracked = distinct event ids)."""
    run = run_once(["events_tracked"])
    assert run.status == "succeeded", run.error
    con = duckdb.connect(str(synced), read_only=True)
    expected = dict(
        con.execute(
            "SELECT CAST(occurred_at AS DATE), count(DISTINCT event_id) FROM events "
            "WHERE occurred_at >= DATE '2026-09-01' AND occurred_at < DATE '2026-10-01' GROUP BY 1"
        ).fetchall()
    )
    con.close()
    stored = {
        v.period_start: int(v.value)
        for v in MetricValue.objects.filter(metric_name="events_tracked", grain="day")
    }
    assert stored == expected
    assert run.values_written == len(expected) and run.values_revised == 0


def test_unchanged_rerun_writes_no_revisions(synced: Path) -> None:
    """A second run over unchanged data leaves every value untouched."""
    first = run_once(["events_tracked", "revenue"], slices=["account__plan"])
    before = list(MetricValue.objects.values_list("pk", "value", "run_id"))
    second = run_once(["events_tracked", "revenue"], slices=["account__plan"])
    assert second.status == "succeeded", second.error
    assert second.values_written == 0 and second.values_revised == 0
    assert second.values_unchanged == first.values_written > 0
    assert list(MetricValue.objects.values_list("pk", "value", "run_id")) == before
    assert not ValueRevision.objects.exists()
    plans = {v.slice["account__plan"] for v in MetricValue.objects.all()}
    assert plans >= {"free", "pro"}


def test_late_event_restates_its_day_as_a_revision(synced: Path) -> None:
    """An event that lands after a run changes its day's value on the next run, and the
    old value is kept as a revision naming both runs."""
    first = run_once(["events_tracked"])
    day = dt.date(2026, 9, 28)
    old = MetricValue.objects.get(metric_name="events_tracked", period_start=day)
    con = duckdb.connect(str(synced))
    con.execute(
        "INSERT INTO events SELECT 'late-1', user_id, account_id, anonymous_id, event_type, "
        "TIMESTAMP '2026-09-28 12:00:00', TIMESTAMP '2026-09-30 23:00:00', revenue, properties "
        "FROM events LIMIT 1"
    )
    con.close()
    second = run_once(["events_tracked"])
    assert second.values_revised == 1 and second.values_written == 1
    value = MetricValue.objects.get(pk=old.pk)
    assert int(value.value) == int(old.value) + 1 and value.run_id == second.pk
    (revision,) = ValueRevision.objects.all()
    assert (revision.old_value, revision.new_value) == (old.value, value.value)
    assert (revision.old_run_id, revision.run_id, revision.reason) == (
        first.pk,
        second.pk,
        "late_data",
    )


def test_default_range_is_the_contract_latency_lookback(synced: Path) -> None:
    """Without --start a run recomputes the trailing window of the events contract's 3-day
    latency SLA."""
    run = compute_run_create(metrics=["events_tracked"], end=END, enqueue=False, acting_user=None)
    assert (run.start, run.end) == (END - dt.timedelta(days=3), END)


def test_finished_run_is_not_computed_twice(synced: Path) -> None:
    """A re-delivered task for a finished run changes nothing (the claim fails)."""
    run = run_once(["events_tracked"])
    again = compute_run_execute(run_id=run.pk)
    assert again.attempts == 1 and again.values_written == run.values_written


def test_unknown_metric_is_a_query_error_with_a_hint(synced: Path) -> None:
    """A misspelt metric is refused before any run is recorded."""
    from tally.errors import QueryError

    with pytest.raises(QueryError) as info:
        compute_run_create(metrics=["events_trackd"], enqueue=False, acting_user=None)
    assert info.value.code == "unknown_metric" and "events_tracked" in (info.value.hint or "")
    assert not ComputeRun.objects.exists()


def test_a_held_lock_makes_the_run_retry_later(synced: Path, settings: object) -> None:
    """A run whose series another live run holds waits, then asks to be retried (transient
    compute_locked); once the lock is free the same run completes."""
    from django.utils import timezone

    from semantic.jobs.compute import ComputeTransientError
    from semantic.models import ComputeLock

    settings.TALLY_COMPUTE_LOCK_WAIT_S = 0.3  # type: ignore[attr-defined]
    holder = compute_run_create(
        metrics=["revenue"], start=START, end=END, enqueue=False, acting_user=None
    )
    ComputeLock.objects.create(
        key="revenue|day", run=holder, expires_at=timezone.now() + dt.timedelta(minutes=5)
    )
    waiting = compute_run_create(
        metrics=["revenue"], start=START, end=END, enqueue=False, acting_user=None
    )
    with pytest.raises(ComputeTransientError) as info:
        compute_run_execute(run_id=waiting.pk, final_attempt=False)
    assert info.value.code == "compute_locked"
    stalled = ComputeRun.objects.get(pk=waiting.pk)
    assert (stalled.status, stalled.retries, stalled.chunks_done) == ("retrying", 1, 0)
    ComputeLock.objects.filter(key="revenue|day").update(run=None)
    assert compute_run_execute(run_id=waiting.pk).status == "succeeded"


def test_a_permanent_error_fails_the_run_with_the_error_stored(synced: Path) -> None:
    """An unknown slice dimension is not retried: the run fails with code and hint stored."""
    run = run_once(["revenue"], slices=["account__plann"])
    assert run.status == "failed" and run.retries == 0
    assert run.error["code"] == "unknown_dimension" and run.error["hint"]
    assert not MetricValue.objects.exists()


def test_a_taken_over_attempt_writes_nothing(synced: Path) -> None:
    """Fencing: once a newer attempt claimed the run, the old one's chunk write is refused."""
    from semantic.jobs.claims import Fenced
    from semantic.jobs.writes import chunk_write

    run = compute_run_create(
        metrics=["revenue"], start=START, end=END, enqueue=False, acting_user=None
    )
    ComputeRun.objects.filter(pk=run.pk).update(attempts=2)
    with pytest.raises(Fenced):
        chunk_write(run, 1, 0, START, END, {}, {}, 0, 0, 0.0)
    assert ComputeRun.objects.get(pk=run.pk).chunks_done == 0


def test_in_process_task_stores_a_transient_error_instead_of_retrying(
    synced: Path, settings: object, tmp_path: Path, django_capture_on_commit_callbacks: object
) -> None:
    """With no broker (the demo) an unreachable warehouse fails the run with the error
    stored, rather than re-running the task inside the caller."""
    from semantic.warehouse.config import parse_warehouse_url
    from tests.conftest import ROOT

    settings.WAREHOUSE = parse_warehouse_url(  # type: ignore[attr-defined]
        f"duckdb:///{tmp_path / 'missing.duckdb'}", base_dir=ROOT
    )
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        run = compute_run_create(metrics=["revenue"], start=START, end=END, acting_user=None)
    failed = ComputeRun.objects.get(pk=run.pk)
    assert failed.status == "failed" and failed.error["code"] == "warehouse_unavailable"


def test_as_of_replay_is_restated_by_the_late_arrivals(synced: Path) -> None:
    """A run as of two days before the end counts only events received by then; the next
    normal run restates the recent days as late_data revisions (the demo shows this)."""
    end = dt.date(2026, 10, 31)
    replay = run_once(["events_tracked", "revenue"], start=dt.date(2026, 10, 25), end=end,
                      as_of=dt.date(2026, 10, 29))  # fmt: skip
    assert replay.status == "succeeded", replay.error
    before = dict(
        MetricValue.objects.filter(metric_name="events_tracked").values_list(
            "period_start", "value"
        )
    )
    current = run_once(["events_tracked", "revenue"], start=dt.date(2026, 10, 25), end=end)
    revisions = list(ValueRevision.objects.select_related("value"))
    assert current.values_revised == len(revisions) > 0
    assert {r.reason for r in revisions} == {"late_data"}
    # Only event counts are restated: the invoices contract's load column is issued_at itself.
    assert {r.value.metric_name for r in revisions} == {"events_tracked"}
    after = dict(
        MetricValue.objects.filter(metric_name="events_tracked").values_list(
            "period_start", "value"
        )
    )
    assert all(int(after[d]) >= int(v) for d, v in before.items())
    assert any(int(after[d]) > int(v) for d, v in before.items())
    assert end not in before and end in after  # nothing that day had been received by then
