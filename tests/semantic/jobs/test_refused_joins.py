"""Compute runs and audits over a metric whose join the fan-out guard refuses (issue 16):
the run is recorded failed with ``fan_out`` and writes nothing of the refused chunk, the
audit records an error row; neither ends in a traceback or a 500."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings

from semantic.jobs.audits import audit_run
from semantic.jobs.compute import Progress, compute_run_create, compute_run_execute
from semantic.key_guard import COUNTS, MSG_KEY_REPEATS
from semantic.models import AuditResult, ComputeRun, MetricValue, ValueRevision

START, END = dt.date(2026, 9, 1), dt.date(2026, 9, 6)


@pytest.fixture
def guarded(synced: Path, settings: Settings) -> Path:
    """The data version is looked at on every query: a change between two chunks is seen."""
    settings.TALLY_RESULT_CACHE_VERSION_S = 0
    return synced


def sql(path: Path, text: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(text)
    finally:
        con.close()


def overlap_a_plan(path: Path) -> None:
    """A second current plan for one account: two plan_history rows valid at once."""
    sql(
        path,
        "INSERT INTO subscriptions SELECT * REPLACE (subscription_id + 1000000 AS "
        "subscription_id) FROM subscriptions WHERE ended_at IS NULL ORDER BY subscription_id "
        "LIMIT 1",
    )


def repeat_an_account(path: Path) -> None:
    """One account row twice (the demo's PRIMARY KEY constraint is dropped first)."""
    sql(
        path,
        "CREATE TABLE loose AS SELECT * FROM accounts; DROP TABLE accounts; "
        "ALTER TABLE loose RENAME TO accounts; "
        "INSERT INTO accounts SELECT * FROM accounts WHERE id = (SELECT MAX(id) FROM accounts)",
    )


PLAN_REFUSAL = MSG_KEY_REPEATS.format(
    item="{{ Dimension('account__is_paid_at_time') }}", entity="account", model="plan_history",
    table="main.subscriptions", type="natural",
    counts=COUNTS.format(keys=1, rows=2, when=" at the same time"),
)  # fmt: skip


def test_a_refused_join_fails_the_run_and_writes_nothing_of_its_chunk(guarded: Path) -> None:
    """events_tracked (events alone) is queried first and succeeds; paid_plan_events (joined
    to plan_history, whose windows now overlap) is refused: the chunk's values are written
    in one transaction after all its queries, so events_tracked's are not stored either."""
    overlap_a_plan(guarded)
    run = compute_run_create(
        metrics=["events_tracked", "paid_plan_events"], start=START, end=END, enqueue=False,
        acting_user=None,
    )  # fmt: skip
    run = compute_run_execute(run_id=run.pk)
    assert run.status == ComputeRun.Status.FAILED
    assert run.error == {
        "code": "fan_out",
        "message": PLAN_REFUSAL,
        "hint": run.error["hint"],
        "location": "group_by",
        "details": None,
    }
    assert "plan_history" in run.error["hint"]
    assert (run.chunks_done, run.values_written) == (0, 0)
    assert MetricValue.objects.count() == 0 and ValueRevision.objects.count() == 0


def test_a_key_broken_between_chunks_stops_the_run_after_the_committed_chunk(
    guarded: Path,
) -> None:
    """Chunks commit one at a time: a key the data breaks after the first chunk (here from
    the progress callback, which runs after the commit) refuses the second; the first
    chunk's values stay, nothing of the second is written."""
    run = compute_run_create(
        metrics=["paid_plan_events"], start=START, end=END, chunk_periods=3, enqueue=False,
        acting_user=None,
    )  # fmt: skip
    assert run.chunks_total == 2
    seen: list[Progress] = []

    def break_after_first(progress: Progress) -> None:
        seen.append(progress)
        overlap_a_plan(guarded)

    run = compute_run_execute(run_id=run.pk, on_progress=break_after_first)
    assert [p.chunks_done for p in seen] == [1]
    assert run.status == ComputeRun.Status.FAILED and run.error["code"] == "fan_out"
    assert run.chunks_done == 1
    stored = sorted(MetricValue.objects.values_list("period_start", flat=True))
    assert stored and stored[-1] <= START + dt.timedelta(days=2)
    assert run.values_written == len(stored)


def test_post_runs_sliced_by_a_repeated_key_is_a_failed_run_not_a_500(
    sign_in: Any, guarded: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """Through the API (in-process without a broker): 202 with the run, which reads failed
    with fan_out naming the accounts model; no values."""
    repeat_an_account(guarded)
    api: Client = sign_in("analyst", "governance")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/runs",
            {"metrics": ["events_tracked"], "start": "2026-09-01", "end": "2026-09-03",
             "slices": ["account__plan"]},
            content_type="application/json",
        )  # fmt: skip
    assert response.status_code == 202, response.json()
    run = api.get(f"/api/v1/runs/{response.json()['id']}").json()
    assert run["status"] == "failed" and run["values_written"] == 0
    assert run["error"]["code"] == "fan_out"
    assert "'accounts' (table main.accounts)" in run["error"]["message"]
    assert MetricValue.objects.count() == 0


def test_reconciling_a_value_whose_join_is_refused_records_an_error(guarded: Path) -> None:
    """A stored value recomputed through a join the guard now refuses is an error row of
    the audit (stored with the other results), not an exception that loses the batch."""
    run = compute_run_create(
        metrics=["paid_plan_events", "revenue"], start=START, end=END, enqueue=False,
        acting_user=None,
    )  # fmt: skip
    assert compute_run_execute(run_id=run.pk).status == ComputeRun.Status.SUCCEEDED
    overlap_a_plan(guarded)
    results = audit_run(
        metrics=["paid_plan_events", "revenue"], checks=("reconcile",), sample=100, seed=1
    )
    by_metric: dict[str, set[tuple[str, str]]] = {}
    for r in results:
        by_metric.setdefault(r.target.split("/")[0], set()).add((r.status, r.message))
    assert by_metric["paid_plan_events"] == {("error", PLAN_REFUSAL)}
    assert by_metric["revenue"] == {("pass", "stored value matches")}
    assert AuditResult.objects.filter(status="error", check_name="reconcile").count() == len(
        [r for r in results if r.status == "error"]
    )


def test_the_audit_command_reports_the_refusal_and_exits_non_zero(guarded: Path) -> None:
    run = compute_run_create(
        metrics=["paid_plan_events"], start=START, end=START, enqueue=False, acting_user=None
    )
    compute_run_execute(run_id=run.pk)
    overlap_a_plan(guarded)
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit", "--checks", "reconcile", "--metric", "paid_plan_events", stdout=out)
    assert exited.value.code == 1
    assert "ERROR error   reconcile       paid_plan_events/day/2026-09-01: " in out.getvalue()
    assert "fan-out" in out.getvalue()
