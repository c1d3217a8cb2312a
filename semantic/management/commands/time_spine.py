from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from django.core.management.base import CommandParser

from semantic.time_spine import TimeSpineStatus, time_spine_refresh, time_spine_status
from tally.management.base import TallyCommand


def _iso_date(value: str) -> dt.date:
    import argparse

    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (use YYYY-MM-DD)") from exc


class Command(TallyCommand):
    help = (
        "Build or refresh Tally's time spine table (tally_time_spine) in the warehouse and "
        "print its range; --check only reports (exit 1 when missing or not covering the data)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--start", type=_iso_date, default=None, help="first day (default: the setting, "
            "TALLY_TIME_SPINE_START, else January 1 of the data's first year)"
        )  # fmt: skip
        parser.add_argument(
            "--end", type=_iso_date, default=None, help="last day (default: the setting, "
            "TALLY_TIME_SPINE_END, else December 31 of the data's last year)"
        )  # fmt: skip
        parser.add_argument(
            "--check", action="store_true", help="report only; exit 1 if missing or not covering"
        )
        parser.add_argument("--release", default=None, help="pin a release (default: latest)")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["check"]:
            status = time_spine_status(release_ref=opts["release"])
        else:
            status = time_spine_refresh(
                start=opts["start"], end=opts["end"], release_ref=opts["release"]
            )
        self._print(status)
        if opts["check"] and not status.ok:
            sys.exit(1)

    def _print(self, status: TimeSpineStatus) -> None:
        owner = "maintained by Tally" if status.managed else "the project's dbt time_spine model"
        self.stdout.write(
            f"time spine {status.table} ({status.column}, {status.grain} grain), {owner}"
        )
        spine = status.spine
        if spine.exists:
            self.stdout.write(f"range {spine.start}..{spine.end} ({spine.rows} rows)")
        else:
            self.stdout.write("range: missing")
        if spine.comment:
            self.stdout.write(f"comment: {spine.comment}")
        data = f"{status.data}" if status.data is not None else "no rows"
        verdict = "covered" if status.covers_data else "NOT covered"
        self.stdout.write(f"data {data}: {verdict}")
        if status.planned is not None:
            self.stdout.write(f"configured {status.planned} ({status.planned_from})")
        for warning in status.warnings:
            self.stderr.write(f"warning: {warning}")
