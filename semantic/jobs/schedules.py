"""Metric schedules: stored in the registry, read by a beat task every minute."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from celery.schedules import crontab
from django.db import transaction
from django.utils import timezone

from registry.services.audit import audit_event_create
from semantic.jobs.compute import compute_run_create
from semantic.models import ComputeRun, MetricSchedule
from tally.errors import QueryError

logger = logging.getLogger("tally.jobs")

# Shorthands accepted wherever a cron expression is (MetricFlow users write these in meta).
CRON_ALIASES = {"hourly": "0 * * * *", "daily": "0 3 * * *", "weekly": "0 3 * * 1"}
BAD_CRON_MESSAGE = "{cron!r} is not a cron expression"


def cron_parse(cron: str) -> crontab:
    """A celery crontab from ``m h dom mon dow`` or an alias (hourly, daily, weekly).

    Example:
        >>> cron_parse("daily").hour
        {3}
    """
    text = CRON_ALIASES.get(cron.strip().lower(), cron)
    parts = text.split()
    try:
        if len(parts) != 5:
            raise ValueError(text)
        minute, hour, dom, month, dow = parts
        return crontab(
            minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow
        )
    except (ValueError, TypeError) as exc:
        raise QueryError(
            BAD_CRON_MESSAGE.format(cron=cron),
            code="bad_cron",
            location="cron",
            hint="five fields 'minute hour day month weekday', or hourly/daily/weekly",
        ) from exc


@transaction.atomic(durable=True)
def metric_schedule_upsert(
    *,
    name: str,
    metrics: Sequence[str],
    cron: str = "hourly",
    grain: str = "day",
    slices: Sequence[str] = (),
    lookback_days: int | None = None,
    enabled: bool = True,
    acting_user: Any,
) -> MetricSchedule:
    """Creates or replaces a named schedule (each tick computes the trailing lookback)."""
    cron_parse(cron)
    schedule, _ = MetricSchedule.objects.update_or_create(
        name=name,
        defaults={
            "metrics": sorted(set(metrics)),
            "cron": CRON_ALIASES.get(cron.strip().lower(), cron),
            "grain": grain,
            "slices": list(slices),
            "lookback_days": lookback_days,
            "enabled": enabled,
        },
    )
    schedule.full_clean()
    audit_event_create(
        actor=acting_user,
        action="metric_schedule.upsert",
        object_kind="metric_schedule",
        object_name=name,
        payload={"metrics": schedule.metrics, "cron": schedule.cron, "enabled": enabled},
    )
    return schedule


def schedules_enqueue_due(*, now: dt.datetime | None = None) -> list[ComputeRun]:
    """Enqueues one run per due schedule; a tick is claimed by a conditional UPDATE on
    ``last_enqueued_at``, so two beats (or a retried tick) never enqueue it twice."""
    now = now or timezone.now()
    runs: list[ComputeRun] = []
    for schedule in MetricSchedule.objects.filter(enabled=True):
        last = schedule.last_enqueued_at
        if last is not None:
            cron = cron_parse(schedule.cron)
            cron.nowfun = lambda: now
            if cron.remaining_estimate(last).total_seconds() > 0:
                continue
        claimed = MetricSchedule.objects.filter(pk=schedule.pk, last_enqueued_at=last).update(
            last_enqueued_at=now
        )
        if claimed != 1:
            continue  # another beat took this tick
        try:
            runs.append(
                compute_run_create(
                    metrics=schedule.metrics,
                    grain=schedule.grain,
                    slices=schedule.slices,
                    lookback_days=schedule.lookback_days,
                    end=now.date(),
                    trigger="schedule",
                    acting_user=None,
                )
            )
        except QueryError:
            # A metric retired since the schedule was written: log, keep the other schedules.
            logger.exception("schedule %s could not be enqueued", schedule.name)
    return runs
