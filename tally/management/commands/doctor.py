from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import CommandParser

from tally.doctor import FAIL, doctor_run
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = (
        "Check this deployment (secret keys, shared cache for rate limits, broker, registry, "
        "warehouse role, time spine); exits 1 when anything is unsafe or broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args: Any, **opts: Any) -> None:
        findings = doctor_run()
        if opts["format"] == "json":
            self.stdout.write(json.dumps([f.__dict__ for f in findings], indent=2))
        else:
            for f in findings:
                self.stdout.write(f"{f.level:>4}  {f.check}: {f.detail}")
                if f.hint and f.level != "ok":
                    self.stdout.write(f"      hint: {f.hint}")
        if any(f.level == FAIL for f in findings):
            sys.exit(1)
