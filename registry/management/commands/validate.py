from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from registry.management.cli_support import PROFILES_DIR_HELP, dbt_profiles_dir
from semantic.compiler.definition_checks import load_project
from tally.management.base import TallyCommand

PLURALS = {
    "contract": "contracts",
    "metric": "metrics",
    "project": "project configuration",
    "saved_query": "saved queries",
    "semantic_model": "semantic models",
}


class Command(TallyCommand):
    help = (
        "Check a folder of definitions (dbt Semantic Layer YAML, ODCS contracts, teams and "
        "domains): every error at once as file:line with a hint; exit 1 on any error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="folder (or file) of definitions")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
        parser.add_argument(
            "--warehouse",
            action="store_true",
            help="also check every table, column and type the definitions read against "
            "WAREHOUSE_URL, and that each dimension's values can be selected",
        )

        parser.add_argument("--profiles-dir", type=Path, default=None, help=PROFILES_DIR_HELP)

    def handle(self, *args: Any, **opts: Any) -> None:
        with dbt_profiles_dir(opts["profiles_dir"]):
            project = load_project(opts["path"])
        if opts["warehouse"] and not project.issues.errors:
            from django.conf import settings

            from semantic.warehouse.definitions_check import definitions_check_warehouse

            definitions_check_warehouse(project, config=settings.WAREHOUSE)
        errors, warnings = project.issues.errors, project.issues.warnings
        if opts["format"] == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "ok": not errors,
                        "objects": len(project.objects),
                        "errors": [i.as_dict() for i in errors],
                        "warnings": [i.as_dict() for i in warnings],
                    },
                    indent=2,
                )
            )
        else:
            for issue in [*errors, *warnings]:
                for line in issue.cli_lines():
                    (self.stderr if issue in errors else self.stdout).write(line)
            counts: dict[str, int] = {}
            for obj in project.objects.values():
                counts[obj.kind] = counts.get(obj.kind, 0) + 1
            summary = ", ".join(f"{n} {PLURALS[k]}" for k, n in sorted(counts.items()))
            self.stdout.write(
                f"{len(errors)} error(s), {len(warnings)} warning(s) in {opts['path']} "
                f"({summary or 'no objects'})"
            )
        if errors or (opts["strict"] and warnings):
            sys.exit(1)
