from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser

from registry.management.cli_support import PROFILES_DIR_HELP, dbt_profiles_dir
from registry.services.definitions import SyncPlan, definitions_sync
from tally.errors import NotFound
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = (
        "Load or refresh definitions and contracts from a folder. Prints the plan (added, "
        "changed major/minor, retired; contracts breaking or compatible), then applies it as "
        "one transaction producing a new release. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="folder of definitions")
        parser.add_argument("--dry-run", action="store_true", help="print the plan only")
        parser.add_argument("--note", default="", help="note stored on the release")
        parser.add_argument("--user", default=None, help="record this username as the author")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument(
            "--propose",
            action="store_true",
            help="open a proposal for review instead of publishing a release",
        )
        parser.add_argument("--title", default="", help="title of the proposal (--propose)")
        parser.add_argument("--profiles-dir", type=Path, default=None, help=PROFILES_DIR_HELP)

    def handle(self, *args: Any, **opts: Any) -> None:
        with dbt_profiles_dir(opts["profiles_dir"]):
            self._sync(opts)

    def _sync(self, opts: dict[str, Any]) -> None:
        if opts["propose"]:
            from registry.management.cli_support import acting_user
            from registry.management.commands.proposal import print_proposal
            from registry.services.proposals import proposal_create_from_folder

            proposal = proposal_create_from_folder(
                acting_user=acting_user(opts["user"]), root=opts["path"], title=opts["title"]
            )
            print_proposal(self, proposal)
            return
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise NotFound(f"no user {opts['user']!r}", code="unknown_user")
        result = definitions_sync(
            root=opts["path"], acting_user=user, note=opts["note"], dry_run=opts["dry_run"]
        )
        if result.project is not None:
            for issue in result.project.issues.warnings:
                for line in issue.cli_lines():
                    self.stdout.write(line)
        self._print(result.plan, result.release, opts)

    def _print(self, plan: SyncPlan, release: Any, opts: dict[str, Any]) -> None:
        if opts["format"] == "json":
            body = plan.as_dict()
            body["release"] = release.name if release else None
            self.stdout.write(json.dumps(body, indent=2, default=str))
            return
        base = f"r{plan.base}" if plan.base else "an empty registry"
        if plan.is_empty:
            self.stdout.write(f"No changes: the registry already matches {opts['path']} ({base}).")
            return
        self.stdout.write(f"Plan against {base}:")
        for line in plan.governance:
            self.stdout.write(f"  {line}")
        for change in plan.changes:
            self.stdout.write(f"  {change.describe()}")
            for item in change.breaking:
                self.stdout.write(f"      breaking: {item}")
            if change.affected:
                self.stdout.write(f"      affects: {', '.join(change.affected)}")
        counts = plan.counts()
        self.stdout.write(
            f"{counts['add'] + counts['restore']} to add, {counts['change']} to change, "
            f"{counts['retire']} to retire, {counts['unchanged']} unchanged."
        )
        if release is not None:
            self.stdout.write(f"Published release {release.name}.")
        elif opts["dry_run"]:
            self.stdout.write("Dry run: nothing written.")
        sys.stdout.flush()
