"""Metric schedules: due ticks enqueue exactly one run each."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from semantic.jobs.schedules import metric_schedule_upsert, schedules_enqueue_due
from semantic.models import ComputeRun
from tally.errors import QueryError

NOON = dt.datetime(2026, 9, 30, 12, 0, tzinfo=dt.UTC)


def test_a_due_schedule_enqueues_one_run_per_tick(
    synced: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """The first tick and each hour after enqueue a run over the lookback; a repeated tick
    in the same hour enqueues nothing."""
    metric_schedule_upsert(name="hourly-events", metrics=["events_tracked"], acting_user=None)
    with django_capture_on_commit_callbacks(execute=True):
        (run,) = schedules_enqueue_due(now=NOON)
    assert (run.trigger, run.start, run.end) == ("schedule", dt.date(2026, 9, 27), NOON.date())
    assert ComputeRun.objects.get(pk=run.pk).status == "succeeded"
    assert schedules_enqueue_due(now=NOON + dt.timedelta(minutes=30)) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert len(schedules_enqueue_due(now=NOON + dt.timedelta(minutes=61))) == 1


def test_a_bad_cron_is_refused_with_a_hint(synced: Path) -> None:
    """A malformed cron expression is a user error naming the field."""
    with pytest.raises(QueryError) as info:
        metric_schedule_upsert(name="x", metrics=["revenue"], cron="every day", acting_user=None)
    assert (info.value.code, info.value.location) == ("bad_cron", "cron")
