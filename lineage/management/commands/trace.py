from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from semantic.compiler.spec import DIALECTS
from tally.management.base import TallyCommand

DEFAULT_ROWS = 100


class Command(TallyCommand):
    help = (
        "Trace a stored value: metric version and release, definitions, the compiled SQL of "
        "its run, contracts, source columns and drill-down SQL for the rows behind it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("value_id", type=int, help="a stored value's id (GET /api/v1/values)")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument(
            "--dialect", choices=DIALECTS, default=None, help="drill-down SQL dialect"
        )
        parser.add_argument(
            "--rows", action="store_true", help="run the drill-down and show the rows"
        )
        parser.add_argument(
            "--limit", type=int, default=DEFAULT_ROWS, help="rows per drill-down read (--rows)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from lineage.trace import value_trace

        trace = value_trace(
            value_id=opts["value_id"],
            dialect=opts["dialect"],
            rows=opts["limit"] if opts["rows"] else None,
        )
        if opts["format"] == "json":
            self.stdout.write(json.dumps(trace.as_dict(), indent=2, default=str))
            return
        for line in trace.lines():
            self.stdout.write(line)
