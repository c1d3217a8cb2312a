"""/api/v1/runs, /api/v1/values and /api/v1/values/{id}/revisions through the client."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.test import Client

from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.models import MetricValue


@pytest.fixture
def api(sign_in: Any, synced: Path) -> Client:
    # Governance: reads values and starts compute runs.
    return sign_in("analyst", "governance")  # type: ignore[no-any-return]


def compute(metric: str, start: dt.date, end: dt.date) -> int:
    run = compute_run_create(
        metrics=[metric], start=start, end=end, enqueue=False, acting_user=None
    )
    return compute_run_execute(run_id=run.pk).pk


def test_post_runs_computes_in_process_without_a_broker(
    api: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """POST /runs answers 202 with the run, enqueued after commit; with no broker the task
    runs in-process (demo mode)."""
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/runs",
            {"metrics": ["revenue"], "start": "2026-09-01", "end": "2026-09-07"},
            content_type="application/json",
        )
    assert response.status_code == 202, response.json()
    run = api.get(f"/api/v1/runs/{response.json()['id']}").json()
    assert run["status"] == "succeeded" and run["values_written"] == 7 and run["progress"] == 1.0


def test_post_runs_refuses_an_unknown_metric_with_its_code(api: Client) -> None:
    """A misspelt metric is a 400 with error.code unknown_metric, not a failed run."""
    response = api.post("/api/v1/runs", {"metrics": ["revnue"]}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_metric"


def test_runs_list_filters_by_status(api: Client, django_assert_num_queries: Any) -> None:
    """The run list pages and filters by status in a fixed number of queries."""
    compute("revenue", dt.date(2026, 9, 1), dt.date(2026, 9, 3))
    compute("events_tracked", dt.date(2026, 9, 1), dt.date(2026, 9, 3))
    # session, user, role grants, teams (access check), count, page
    with django_assert_num_queries(6):
        body = api.get("/api/v1/runs?status=succeeded").json()
    assert body["count"] == 2 and {r["status"] for r in body["results"]} == {"succeeded"}
    assert api.get("/api/v1/runs?status=failed").json()["count"] == 0
    assert api.get("/api/v1/runs/999999").json()["error"]["code"] == "run_not_found"


def test_values_filter_by_metric_grain_and_range(
    api: Client, django_assert_num_queries: Any
) -> None:
    """Values come back in period order, filtered by metric, grain and date range."""
    compute("revenue", dt.date(2026, 9, 1), dt.date(2026, 9, 10))
    compute("events_tracked", dt.date(2026, 9, 1), dt.date(2026, 9, 10))
    # One more than before row policies reached stored values: the caller's access profile
    # (principal_for), read once whatever the page size.
    with django_assert_num_queries(7):
        body = api.get(
            "/api/v1/values?metric=revenue&grain=day&start=2026-09-03&end=2026-09-05"
        ).json()
    assert [v["period_start"] for v in body["results"]] == [
        "2026-09-03",
        "2026-09-04",
        "2026-09-05",
    ]
    assert {v["metric_name"] for v in body["results"]} == {"revenue"}
    assert body["results"][0]["metric_version"] == "1.0"
    bad = api.get("/api/v1/values?grain=fortnight")
    assert bad.status_code == 400 and bad.json()["error"]["location"] == "grain"


def test_revisions_endpoint_lists_a_restatement(api: Client, synced: Path) -> None:
    """After a late event, the value's revisions show old and new values and both runs."""
    day = dt.date(2026, 9, 5)
    first = compute("events_tracked", day, day)
    con = duckdb.connect(str(synced))
    con.execute(
        "INSERT INTO events SELECT 'late-api', user_id, account_id, anonymous_id, event_type, "
        "TIMESTAMP '2026-09-05 08:00:00', TIMESTAMP '2026-09-07 08:00:00', revenue, properties "
        "FROM events LIMIT 1"
    )
    con.close()
    second = compute("events_tracked", day, day)
    value = MetricValue.objects.get(metric_name="events_tracked", period_start=day)
    body = api.get(f"/api/v1/values/{value.pk}/revisions").json()
    (revision,) = body["results"]
    assert (revision["old_run"], revision["run"], revision["reason"]) == (
        first,
        second,
        "late_data",
    )
    assert int(revision["new_value"]) == int(revision["old_value"]) + 1
    missing = api.get("/api/v1/values/999999/revisions")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "value_not_found"
