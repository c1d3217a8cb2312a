"""Computed metric values, the runs that wrote them, their restatements, schedules and locks.

A ``MetricValue`` row is the *current* value of one key (metric, grain, period, slice); the
database refuses a second row for a key, so a retried or re-delivered run can only update it.
Every change of a stored value leaves a ``ValueRevision`` (old, new, run, reason).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from registry.models import DefinitionVersion, Release

GRAIN_CHOICES = [(g, g) for g in ("day", "week", "month", "quarter", "year")]


class ComputeRun(models.Model):
    """One computation of metrics over a period range, from request to outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        RETRYING = "retrying"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    metrics = models.JSONField()  # sorted metric names
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="+")
    grain = models.CharField(max_length=10, choices=GRAIN_CHOICES)
    start = models.DateField()
    end = models.DateField()
    slices = models.JSONField(default=list, blank=True)  # group-by dimensions beyond metric_time
    # Count only rows loaded on or before this day (each source's load column is its contract's
    # freshness element): replays what the warehouse held then; a later run restates it.
    as_of = models.DateField(null=True, blank=True)
    trigger = models.CharField(max_length=20, default="manual")  # manual | schedule | demo
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The claim lease: a worker that dies mid-run stops renewing it, and the re-delivered
    # task may take the run over once it has expired.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    # Failed attempts since the last committed chunk (the retry budget counts these; a lock
    # wait or a busy duplicate is not a failure, and every committed chunk resets it).
    failures_in_a_row = models.PositiveIntegerField(default=0)
    # When the run's task was last sent to the broker (or, retrying, when it is due): the
    # reaper re-sends a queued or retrying run whose message is overdue (the broker lost it).
    # None for runs computed in-process, which no message carries.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    warehouse = models.CharField(max_length=300, blank=True)
    sql_hash = models.CharField(max_length=64, blank=True)
    queries = models.PositiveIntegerField(default=0)
    # Rows the warehouse returned (one per period and slice); drivers do not report scans.
    rows_returned = models.BigIntegerField(default=0)
    values_written = models.PositiveIntegerField(default=0)
    values_revised = models.PositiveIntegerField(default=0)
    values_unchanged = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gte=models.F("start")), name="run_range_order")
        ]
        indexes = [models.Index(fields=["status", "id"], name="run_status_idx")]

    @property
    def progress(self) -> float:
        return self.chunks_done / self.chunks_total if self.chunks_total else 0.0

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"


class MetricValue(models.Model):
    """The current value of one (metric, grain, period start, dimension slice)."""

    metric_name = models.CharField(max_length=255)
    metric_version = models.ForeignKey(
        DefinitionVersion, on_delete=models.PROTECT, related_name="+"
    )
    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="+")
    grain = models.CharField(max_length=10, choices=GRAIN_CHOICES)
    period_start = models.DateField()
    # Canonical JSON (sorted keys, no spaces) so equal slices hash equally across runs.
    slice = models.JSONField(default=dict, blank=True)
    slice_hash = models.CharField(max_length=64)
    # Canonical decimal text: exact on every registry backend (SQLite keeps only 15 digits
    # of a DECIMAL), and compared as text to decide "unchanged".
    value = models.CharField(max_length=80, null=True, blank=True)  # noqa: DJ001 (NULL = no value)
    run = models.ForeignKey(ComputeRun, on_delete=models.PROTECT, related_name="values")
    computed_at = models.DateTimeField()
    revision_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["metric_name", "grain", "period_start", "slice_hash"]
        constraints = [
            models.UniqueConstraint(
                fields=["metric_name", "grain", "period_start", "slice_hash"],
                name="metric_value_current_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric_name}/{self.grain}/{self.period_start}={self.value}"


class ValueRevision(models.Model):
    """A restatement: a stored value changed on recompute (append-only)."""

    value = models.ForeignKey(MetricValue, on_delete=models.CASCADE, related_name="revisions")
    old_value = models.CharField(max_length=80, null=True, blank=True)  # noqa: DJ001
    new_value = models.CharField(max_length=80, null=True, blank=True)  # noqa: DJ001
    old_run = models.ForeignKey(ComputeRun, on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(ComputeRun, on_delete=models.PROTECT, related_name="revisions")
    old_metric_version = models.ForeignKey(
        DefinitionVersion, on_delete=models.PROTECT, related_name="+"
    )
    new_metric_version = models.ForeignKey(
        DefinitionVersion, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=40)  # late_data | definition_changed
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class ComputeLock(models.Model):
    """A lease per (metric, grain): runs touching the same series take turns.

    Claimed with a conditional UPDATE (free, expired, or already ours), so it works the
    same on SQLite and PostgreSQL and survives a worker killed while holding it.
    """

    key = models.CharField(max_length=300, unique=True)
    run = models.ForeignKey(
        ComputeRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)


class MetricSchedule(models.Model):
    """Compute these metrics on a cron schedule over the trailing lookback window."""

    name = models.SlugField(max_length=100, unique=True)
    metrics = models.JSONField()
    grain = models.CharField(max_length=10, choices=GRAIN_CHOICES, default="day")
    slices = models.JSONField(default=list, blank=True)
    cron = models.CharField(max_length=100, default="0 * * * *")
    lookback_days = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]


class AuditResult(models.Model):
    """One check of one audit batch: contract rules on the live warehouse, value anomalies,
    reconciliation of stored values. Append-only; the UI shows the newest batch."""

    class Status(models.TextChoices):
        PASS = "pass"
        FAIL = "fail"
        ERROR = "error"  # the check itself could not run

    batch = models.UUIDField(db_index=True)
    check_name = models.CharField(max_length=40)  # schema_drift, null_values, … anomaly, reconcile
    target = models.CharField(max_length=300)  # contract:table.column or metric/grain/day
    severity = models.CharField(max_length=10, default="error")  # error | warning
    status = models.CharField(max_length=10, choices=Status.choices)
    message = models.TextField()
    observed = models.JSONField(null=True, blank=True)
    expected = models.JSONField(null=True, blank=True)  # anomaly: {"low", "high", "median"}
    evidence_sql = models.TextField(blank=True)
    owner = models.CharField(max_length=100, blank=True)  # team slug to alert
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["check_name", "status"], name="audit_check_status_idx")]
