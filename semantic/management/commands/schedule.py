from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from semantic.jobs.schedules import metric_schedule_upsert
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = (
        "Create or replace a named metric schedule; `celery -A tally beat` enqueues a compute "
        "run of the trailing lookback window at each tick."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("metrics", nargs="+")
        parser.add_argument("--cron", default="hourly", help="cron, or hourly/daily/weekly")
        parser.add_argument("--grain", default="day")
        parser.add_argument("--slice", action="append", default=[])
        parser.add_argument("--lookback-days", type=int, default=None)
        parser.add_argument("--disable", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        schedule = metric_schedule_upsert(
            name=opts["name"],
            metrics=[m for arg in opts["metrics"] for m in arg.split(",")],
            cron=opts["cron"],
            grain=opts["grain"],
            slices=opts["slice"],
            lookback_days=opts["lookback_days"],
            enabled=not opts["disable"],
            acting_user=None,
        )
        state = "enabled" if schedule.enabled else "disabled"
        self.stdout.write(f"schedule {schedule.name}: {schedule.cron} ({state})")
