from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from semantic.jobs.selectors import run_list
from semantic.management.commands.compute import run_summary
from semantic.models import ComputeRun
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = "List compute runs, newest first: status, progress, values written/revised, errors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--status", choices=list(ComputeRun.Status.values), default=None)
        parser.add_argument("--metric", default=None)
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--format", choices=["table", "json"], default="table")

    def handle(self, *args: Any, **opts: Any) -> None:
        runs = list(run_list(status=opts["status"], metric=opts["metric"])[: opts["limit"]])
        if opts["format"] == "json":
            body = [run_summary(r) for r in runs]
            self.stdout.write(json.dumps(body, indent=2, default=str))
            return
        header = ("id", "status", "metrics", "grain", "range", "chunks", "written", "revised",
                  "retries", "error")  # fmt: skip
        rows = [
            (
                str(r.pk),
                r.status,
                ",".join(r.metrics)[:40],
                r.grain,
                f"{r.start}..{r.end}",
                f"{r.chunks_done}/{r.chunks_total}",
                str(r.values_written),
                str(r.values_revised),
                str(r.retries),
                (r.error or {}).get("code") or "",
            )
            for r in runs
        ]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        self.stdout.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for row in rows:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        self.stdout.write(f"({len(rows)} runs)")
