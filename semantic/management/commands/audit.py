from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from django.core.management.base import CommandParser

from semantic.jobs.audits import audit_run
from tally.management.base import TallyCommand

CHECKS = ("contracts", "anomaly", "reconcile")


class Command(TallyCommand):
    help = (
        "Audit contracts against the live warehouse (schema drift, quality rules, freshness), "
        "stored series for anomalies, and a sample of stored values by recomputing them; "
        "exit 1 when an error-severity check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contract", action="append", default=[], help="only this contract")
        parser.add_argument("--metric", action="append", default=[], help="only this metric")
        parser.add_argument(
            "--checks", default=",".join(CHECKS), help=f"comma-separated: {', '.join(CHECKS)}"
        )
        parser.add_argument("--now", default=None, help="audit as of this ISO timestamp (UTC)")
        parser.add_argument("--sample", type=int, default=20, help="values to reconcile")
        parser.add_argument("--release", default=None)
        parser.add_argument("--all", action="store_true", help="also print passing checks")
        parser.add_argument(
            "--alert", action="store_true", help="email/webhook the owners of failing checks"
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **opts: Any) -> None:
        now = dt.datetime.fromisoformat(opts["now"]).replace(tzinfo=dt.UTC) if opts["now"] else None
        results = audit_run(
            contracts=opts["contract"] or None,
            metrics=opts["metric"] or None,
            checks=tuple(c.strip() for c in opts["checks"].split(",") if c.strip()),
            now=now,
            release_ref=opts["release"],
            sample=opts["sample"],
            alert=opts["alert"],
        )
        if opts["format"] == "json":
            keys = ("check_name", "target", "severity", "status", "message", "observed",
                    "expected", "evidence_sql", "owner")  # fmt: skip
            body = [{k: getattr(r, k) for k in keys} for r in results]
            self.stdout.write(json.dumps(body, indent=2, default=str))
        else:
            for r in results:
                if r.status == "pass" and not opts["all"]:
                    continue
                self.stdout.write(f"{r.status.upper():5} {r.severity:7} {r.check_name:15} "
                                  f"{r.target}: {r.message}")  # fmt: skip
            failed = sum(r.status != "pass" for r in results)
            self.stdout.write(f"({len(results)} checks, {failed} not passing)")
        if any(r.status != "pass" and r.severity == "error" for r in results):
            sys.exit(1)
