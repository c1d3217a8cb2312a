"""Writing one chunk of a compute run: its values upserted, its revisions recorded, and the run's
progress advanced, all in one transaction fenced by the attempt's token (see
semantic.jobs.compute for the exactly-once argument)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from semantic.jobs.claims import Fenced
from semantic.models import ComputeRun, MetricValue, ValueRevision
from tally.bulk import rows_insert


@transaction.atomic(durable=True)
def chunk_write(
    run: ComputeRun,
    token: int,
    index: int,
    first: dt.date,
    last: dt.date,
    computed: dict[tuple[str, dt.date, str], tuple[str | None, dict[str, Any]]],
    versions: dict[str, int],
    rows_returned: int,
    queries: int,
    scan_s: float,
) -> None:
    """Upserts one chunk's values: unchanged rows untouched, changed rows revised, new rows
    inserted; the run's progress advances in the same transaction (fenced by the token)."""
    written_started = time.perf_counter()
    advanced = ComputeRun.objects.filter(pk=run.pk, attempts=token, chunks_done=index).update(
        # A committed chunk is progress: the retry budget counts failures in a row.
        chunks_done=index + 1,
        failures_in_a_row=0,
    )
    if advanced != 1:
        raise Fenced()
    # Tuples, not model instances: a year of 30 daily metrics is 11k rows per chunk, and
    # building/saving that many instances costs more than the warehouse scan.
    existing = {
        (name, period, digest): (pk, value, version_id, run_id, revisions)
        for pk, name, period, digest, value, version_id, run_id, revisions in (
            MetricValue.objects.select_for_update()
            .filter(metric_name__in=run.metrics, grain=run.grain, period_start__range=(first, last))
            .values_list(
                "pk",
                "metric_name",
                "period_start",
                "slice_hash",
                "value",
                "metric_version_id",
                "run_id",
                "revision_count",
            )
        )
    }
    now = timezone.now()
    new: list[tuple[Any, ...]] = []
    changed: list[MetricValue] = []
    repointed: list[MetricValue] = []
    revisions: list[ValueRevision] = []
    unchanged = 0
    for (name, period, digest), (value, plain) in computed.items():
        version_id = versions[name]
        current = existing.get((name, period, digest))
        if current is None:
            new.append((name, version_id, period, plain, digest, value))
            continue
        pk, old_value, old_version_id, old_run_id, revision_count = current
        if old_value == value:
            unchanged += 1
            if old_version_id != version_id:
                # Same number under a new version: point at it, no restatement.
                repointed.append(
                    MetricValue(pk=pk, metric_version_id=version_id, release_id=run.release_id)
                )
            continue
        revisions.append(
            ValueRevision(
                value_id=pk,
                old_value=old_value,
                new_value=value,
                old_run_id=old_run_id,
                run=run,
                old_metric_version_id=old_version_id,
                new_metric_version_id=version_id,
                reason="late_data" if old_version_id == version_id else "definition_changed",
            )
        )
        changed.append(
            MetricValue(
                pk=pk, value=value, run_id=run.pk, computed_at=now, metric_version_id=version_id,
                release_id=run.release_id, revision_count=revision_count + 1,
            )
        )  # fmt: skip
    _insert_values(run, now, new)
    MetricValue.objects.bulk_update(
        changed,
        ["value", "run", "computed_at", "metric_version", "release", "revision_count"],
        batch_size=1000,
    )
    MetricValue.objects.bulk_update(repointed, ["metric_version", "release"], batch_size=1000)
    ValueRevision.objects.bulk_create(revisions, batch_size=2000)
    timings = dict(run.timings)
    timings["scan_s"] = round(timings.get("scan_s", 0) + scan_s, 4)
    timings["write_s"] = round(timings.get("write_s", 0) + time.perf_counter() - written_started, 4)
    run.timings = timings
    ComputeRun.objects.filter(pk=run.pk).update(
        queries=F("queries") + queries,
        rows_returned=F("rows_returned") + rows_returned,
        values_written=F("values_written") + len(new) + len(changed),
        values_revised=F("values_revised") + len(changed),
        values_unchanged=F("values_unchanged") + unchanged,
        timings=timings,
    )


_INSERT_COLUMNS = ("metric_name", "metric_version_id", "release_id", "grain", "period_start",
                   "slice", "slice_hash", "value", "run_id", "computed_at", "revision_count")  # fmt: skip


def _insert_values(run: ComputeRun, now: dt.datetime, rows: list[tuple[Any, ...]]) -> None:
    """One executemany of new values (the ORM's per-field preparation dominated backfills)."""
    if not rows:
        return
    ops = connection.ops
    computed_at = ops.adapt_datetimefield_value(now)
    params = [
        (name, version_id, run.release_id, run.grain, ops.adapt_datefield_value(period),
         json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
         digest, value, run.pk, computed_at, 0)
        for name, version_id, period, plain, digest, value in rows
    ]  # fmt: skip
    rows_insert(MetricValue._meta.db_table, _INSERT_COLUMNS, params)
