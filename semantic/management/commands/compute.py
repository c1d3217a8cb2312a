from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.utils import timezone

from semantic.jobs.compute import Progress, compute_run_create, compute_run_execute
from semantic.jobs.selectors import run_get
from semantic.models import ComputeRun
from tally.management.base import TallyCommand

DONE = (ComputeRun.Status.SUCCEEDED, ComputeRun.Status.FAILED)


def _iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (use YYYY-MM-DD)") from exc


def bar(progress: Progress, width: int = 30) -> str:
    """``[#########.....] 3/5 chunks  120 values written, 2 revised``"""
    share = progress.chunks_done / progress.chunks_total if progress.chunks_total else 1.0
    filled = round(share * width)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {progress.chunks_done}/{progress.chunks_total}"
        f" chunks  {progress.values_written} values written, {progress.values_revised} revised"
    )


class Command(TallyCommand):
    help = (
        "Compute metric values over a date range (default: the trailing lookback window of "
        "the metrics' contracts) and store them; prints a progress bar for backfills."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("metrics", nargs="+", help="metric names")
        parser.add_argument(
            "--grain", default="day", choices=["day", "week", "month", "quarter", "year"]
        )
        parser.add_argument("--start", type=_iso_date, default=None, help="first day")
        parser.add_argument("--end", type=_iso_date, default=None, help="last day (default today)")
        parser.add_argument(
            "--slice", action="append", default=[], help="also group by this dimension"
        )
        parser.add_argument("--release", default=None, help="pin a release (default: latest)")
        parser.add_argument("--lookback-days", type=int, default=None)
        parser.add_argument("--chunk-periods", type=int, default=None, help="periods per query")
        parser.add_argument(
            "--as-of", type=_iso_date, default=None,
            help="count only rows loaded by this day (replay; the next run restates it)",
        )  # fmt: skip
        parser.add_argument(
            "--no-wait", action="store_true", help="enqueue and print the run id (needs a broker)"
        )
        parser.add_argument(
            "--timeout", type=float, default=None,
            help="stop waiting after this many seconds (default TALLY_COMPUTE_WAIT_S); "
            "the run carries on in the background",
        )  # fmt: skip
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **opts: Any) -> None:
        # No broker: the demo computes in this process, with the bar fed by the service.
        in_process = bool(settings.CELERY_TASK_ALWAYS_EAGER)
        run = compute_run_create(
            metrics=[m for arg in opts["metrics"] for m in arg.split(",")],
            grain=opts["grain"],
            start=opts["start"],
            end=opts["end"],
            slices=opts["slice"],
            release_ref=opts["release"],
            lookback_days=opts["lookback_days"],
            chunk_periods=opts["chunk_periods"],
            as_of=opts["as_of"],
            enqueue=not in_process,
            acting_user=None,
        )
        show = opts["format"] == "text" and not opts["no_wait"]
        if show:
            self.stderr.write(
                f"run {run.pk}: {', '.join(run.metrics)} by {run.grain} "
                f"{run.start}..{run.end} ({run.chunks_total} chunks)"
            )
        if in_process:
            run = compute_run_execute(
                run_id=run.pk, on_progress=(lambda p: self._bar(p)) if show else None
            )
        elif opts["no_wait"]:
            self.stdout.write(str(run.pk))
            return
        else:
            timeout = opts["timeout"]
            run = self._wait(
                run, show, settings.TALLY_COMPUTE_WAIT_S if timeout is None else timeout
            )
        if show and sys.stderr.isatty():
            self.stderr.write("")
        self._report(run, opts["format"])
        if run.status == ComputeRun.Status.FAILED:
            sys.exit(1)

    def _bar(self, progress: Progress) -> None:
        ending = "\r" if sys.stderr.isatty() else "\n"
        self.stderr.write(bar(progress), ending=ending)

    def _wait(self, run: ComputeRun, show: bool, timeout_s: float) -> ComputeRun:
        deadline = time.monotonic() + timeout_s
        last: tuple[int, str, str] | None = None
        while True:
            fresh = run_get(run_id=run.pk)
            assert fresh is not None
            waiting_for = waiting_reason(fresh)
            state = (fresh.chunks_done, fresh.status, waiting_for)
            if show and state != last:
                self._bar(
                    Progress(
                        fresh.chunks_done,
                        fresh.chunks_total,
                        fresh.values_written,
                        fresh.values_revised,
                    )
                )
                if waiting_for:
                    self.stderr.write(f"  {waiting_for}")
                last = state
            if fresh.status in DONE:
                return fresh
            if time.monotonic() > deadline:
                self.stderr.write(
                    f"error[wait_timeout]: gave up waiting after {timeout_s:g}s: run {fresh.pk} "
                    f"is {fresh.status} ({waiting_for or 'working'})"
                )
                self.stderr.write(
                    f"  hint: the run carries on without this command; follow it with "
                    f"`tally runs {fresh.pk}` or wait longer with --timeout"
                )
                sys.exit(4)
            time.sleep(0.25)

    def _report(self, run: ComputeRun, fmt: str) -> None:
        if fmt == "json":
            self.stdout.write(json.dumps(run_summary(run), indent=2, default=str))
            return
        took = (
            f", {(run.finished_at - run.started_at).total_seconds():.1f}s"
            if run.finished_at and run.started_at
            else ""
        )
        self.stdout.write(
            f"run {run.pk} {run.status}: {run.values_written} values written, "
            f"{run.values_revised} revised, {run.values_unchanged} unchanged, "
            f"{run.queries} queries, {run.retries} retries{took}"
        )
        if run.error:
            self.stderr.write(f"error[{run.error.get('code')}]: {run.error.get('message')}")
            if run.error.get("hint"):
                self.stderr.write(f"  hint: {run.error['hint']}")


def waiting_reason(run: ComputeRun) -> str:
    """What a run that is not moving waits for, in an operator's words ("" when working)."""
    now = timezone.now()
    if run.status == ComputeRun.Status.QUEUED:
        since = f" for {(now - run.created_at).total_seconds():.0f}s" if run.created_at else ""
        return (
            f"waiting for a worker to take run {run.pk} (queued{since}; is "
            "`celery -A tally worker` running against CELERY_BROKER_URL?)"
        )
    if run.status == ComputeRun.Status.RETRYING:
        error = run.error or {}
        due = (
            f" in {max((run.enqueued_at - now).total_seconds(), 0):.0f}s" if run.enqueued_at else ""
        )
        return (
            f"retrying{due} after error[{error.get('code')}]: {error.get('message')} "
            f"({run.failures_in_a_row} failure(s) in a row)"
        )
    if (
        run.status == ComputeRun.Status.RUNNING
        and run.lease_expires_at is not None
        and run.lease_expires_at < now
    ):
        return (
            f"the worker of run {run.pk} stopped renewing its lease; the reaper (celery beat) "
            "re-sends the run to a live worker"
        )
    return ""


def run_summary(run: ComputeRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "metrics": run.metrics,
        "grain": run.grain,
        "start": run.start,
        "end": run.end,
        "slices": run.slices,
        "as_of": run.as_of,
        "release": run.release.name,
        "trigger": run.trigger,
        "attempts": run.attempts,
        "retries": run.retries,
        "chunks_done": run.chunks_done,
        "chunks_total": run.chunks_total,
        "queries": run.queries,
        "rows_returned": run.rows_returned,
        "values_written": run.values_written,
        "values_revised": run.values_revised,
        "values_unchanged": run.values_unchanged,
        "sql_hash": run.sql_hash,
        "warehouse": run.warehouse,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "timings": run.timings,
        "error": run.error,
        "celery_task_id": run.celery_task_id,
    }
