from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = (
        "Everything downstream of a column or table (TABLE.COLUMN, schema.table.column or any "
        "lineage node): affected metric versions, the releases pinning them, owners to notify."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node", help="e.g. events.revenue, main.events, metric:arpa")
        parser.add_argument("--release", default=None, help="rN or latest (default)")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **opts: Any) -> None:
        from lineage.selectors import lineage_impact

        report = lineage_impact(node=opts["node"], release_ref=opts["release"])
        if opts["format"] == "json":
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        impact = report.impact
        self.stdout.write(f"{impact.node} (release {report.release})")
        self.stdout.write(f"metrics affected: {len(impact.metrics)}")
        for metric in impact.metrics:
            pinned = ", ".join(report.metric_releases.get(metric, [report.release]))
            self.stdout.write(f"  {metric}  (pinned in {pinned})")
        self.stdout.write("owners to notify: " + (", ".join(impact.owners) or "none"))
        other = [n for n in impact.nodes if not n.startswith(("metric:", "release:"))]
        self.stdout.write(f"other nodes downstream: {len(other)}")
        for node in other:
            self.stdout.write(f"  {node}")
