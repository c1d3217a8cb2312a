from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from registry.management.cli_support import acting_user
from registry.selectors import proposal_get
from registry.services.proposals import proposal_merge
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = "Merge an approved proposal into a new release (one transaction)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="proposal number")
        parser.add_argument("--user", default=None, help="who merges (default $TALLY_USER)")

    def handle(self, *args: Any, **opts: Any) -> None:
        user = acting_user(opts["user"])
        proposal = proposal_merge(proposal=proposal_get(proposal_id=opts["id"]), acting_user=user)
        self.stdout.write(f"Merged #{proposal.pk} into release {proposal.merged_release.name}.")
